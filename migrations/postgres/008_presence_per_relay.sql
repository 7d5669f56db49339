-- PostgreSQL dialect of migrations/008_presence_per_relay.sql. Presence with several relays
-- (RELAY_INSTANCES): which relays hold a socket of each user.
--
-- `presence.online` stays what every reader reads; a relay now records only its own share:
-- a user is online while any relay has a row here, and a relay that starts (after a crash
-- too) takes back only its own rows, not its neighbours' users. (SQLite's
-- `INSERT OR IGNORE INTO presence_relays` is `INSERT ... ON CONFLICT DO NOTHING` here, a form
-- SQLite reads too.)
CREATE TABLE presence_relays (
    user_id BIGINT  NOT NULL REFERENCES users(id),
    relay   BIGINT  NOT NULL CHECK (relay >= 1),
    PRIMARY KEY (user_id, relay)
);

-- Until now there was one relay: whoever is online is online there.
INSERT INTO presence_relays (user_id, relay) SELECT user_id, 1 FROM presence WHERE online = 1;
