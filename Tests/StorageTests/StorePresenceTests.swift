import Domain
import Foundation
@testable import Storage
import Testing

/// Presence recorded by several relays, each its own share.
@Suite struct StorePresenceTests {
    let database: TestDatabase
    let store: Store

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
    }

    @Test func aUserIsOnlineWhileAnyRelayHoldsASocket() throws {
        let sam = try store.login(username: "sam").id
        let first = try store.recordPresence([(sam, true)], relay: 1)
        #expect(first.map(\.presence.online) == [true])
        #expect(first.map(\.changed) == [true])
        // The second relay's socket changes nothing anyone sees.
        #expect(try store.recordPresence([(sam, true)], relay: 2).map(\.changed) == [false])
        let leftOne = try store.recordPresence([(sam, false)], relay: 1)
        #expect(leftOne.map(\.presence.online) == [true])
        #expect(leftOne.map(\.changed) == [false])
        #expect(try store.presence(of: sam).online)
        let leftAll = try store.recordPresence([(sam, false)], relay: 2)
        #expect(leftAll.map(\.presence.online) == [false])
        #expect(leftAll.map(\.changed) == [true])
        let stored = try store.presence(of: sam)
        #expect(!stored.online)
        #expect(stored.lastSeen == leftAll.first?.presence.lastSeen)
    }

    @Test func aStartingRelayTakesBackOnlyItsOwnShare() throws {
        let (sam, ann) = (try store.login(username: "sam").id, try store.login(username: "ann").id)
        _ = try store.recordPresence([(sam, true), (ann, true)], relay: 1)
        _ = try store.recordPresence([(ann, true)], relay: 2)
        try store.resetPresence(relay: 1, relayInstances: 2)
        #expect(try !store.presence(of: sam).online)
        #expect(try store.presence(of: ann).online)
        // Instance 1 also clears relays the deployment no longer runs.
        _ = try store.recordPresence([(sam, true)], relay: 3)
        try store.resetPresence(relay: 1, relayInstances: 2)
        #expect(try !store.presence(of: sam).online)
        #expect(try store.presence(of: ann).online)
        try store.resetPresence(relay: 2, relayInstances: 2)
        #expect(try !store.presence(of: ann).online)
        #expect(try store.count("presence_relays") == 0)
    }

    @Test func neverSeenIsOfflineWithoutLastSeen() throws {
        let sam = try store.login(username: "sam").id
        #expect(try store.presence(of: sam) == Presence(userID: sam, online: false, lastSeen: nil))
    }
}
