-- Presence with several relays (RELAY_INSTANCES): which relays hold a socket of each user.
--
-- `presence.online` stays what every reader reads; a relay now records only its own share:
-- a user is online while any relay has a row here, and a relay that starts (after a crash
-- too) takes back only its own rows, not its neighbours' users.
CREATE TABLE presence_relays (
    user_id INTEGER NOT NULL REFERENCES users(id),
    relay   INTEGER NOT NULL CHECK (relay >= 1),
    PRIMARY KEY (user_id, relay)
) WITHOUT ROWID;

-- Until now there was one relay: whoever is online is online there.
INSERT INTO presence_relays (user_id, relay) SELECT user_id, 1 FROM presence WHERE online = 1;
