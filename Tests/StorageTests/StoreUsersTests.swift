import Domain
import Storage
import Testing

@Suite struct StoreUsersTests {
    private let database: TestDatabase
    private let store: Store

    init() throws {
        database = try TestDatabase()
        store = try database.migratedStore()
    }

    @Test func loginCreatesOnce() throws {
        let first = try store.login(username: "alice")
        #expect(first.username == "alice")
        #expect(first.displayName == nil)
        #expect(first.bio == nil)
        #expect(first.imageID == nil)
        #expect(try store.login(username: "alice") == first)
        #expect(try store.count("users") == 1)
        #expect(try store.login(username: "bob").id != first.id)
    }

    @Test func loginIsCaseInsensitiveAndKeepsTheFirstSpelling() throws {
        let first = try store.login(username: "Alice")
        let again = try store.login(username: "ALICE")
        #expect(again == first)
        #expect(again.username == "Alice")
        #expect(try store.user(username: "alice") == first)
        #expect(try store.count("users") == 1)
        // The database itself refuses a case variant.
        #expect(throws: StorageError.self) {
            try store.database.statement("INSERT INTO users (username) VALUES (?)").run([.text("aLiCe")])
        }
    }

    @Test func lookups() throws {
        let alice = try store.login(username: "alice")
        #expect(try store.user(id: alice.id) == alice)
        #expect(try store.user(id: alice.id + 100) == nil)
        #expect(try store.user(username: "nobody") == nil)
    }

    @Test func searchIsASubstringMatchShortestFirstAndBounded() throws {
        _ = try store.users("alice", "malice", "Alicia", "bob", "al", "xal_y", "xalzy")
        #expect(try store.searchUsers(matching: "ali", limit: 10).map(\.username) == ["alice", "Alicia", "malice"])
        #expect(try store.searchUsers(matching: "ALI", limit: 2).map(\.username) == ["alice", "Alicia"])
        #expect(try store.searchUsers(matching: "zzz", limit: 10).isEmpty)
        // `_` and `%` are literal characters, not LIKE wildcards.
        #expect(try store.searchUsers(matching: "l_", limit: 10).map(\.username) == ["xal_y"])
        #expect(try store.searchUsers(matching: "%", limit: 10).isEmpty)
    }

    @Test func updateProfileSetsKeepsAndClears() throws {
        let alice = try store.login(username: "alice")
        var update = ProfileUpdate()
        update.displayName = .set("Alice A")
        update.bio = .set("hello")
        let updated = try store.updateProfile(userID: alice.id, update)
        #expect(updated == User(id: alice.id, username: "alice", displayName: "Alice A", bio: "hello", imageID: nil))

        var onlyBio = ProfileUpdate()
        onlyBio.bio = .set(nil)
        let cleared = try store.updateProfile(userID: alice.id, onlyBio)
        #expect(cleared.displayName == "Alice A")
        #expect(cleared.bio == nil)
        #expect(try store.user(id: alice.id) == cleared)
    }

    @Test func profileImageMustBeTheUsersOwnPicture() throws {
        let users = try store.users("alice", "bob")
        let own = try store.upload(by: users[0].id, name: "own.png")
        let document = try store.upload(by: users[0].id, name: "doc.bin", kind: .file)
        let theirs = try store.upload(by: users[1].id, name: "theirs.png")

        var update = ProfileUpdate()
        update.imageID = .set(theirs.id)
        #expect(throws: MessengerError.invalid("image_id \(theirs.id) is not one of your uploads")) {
            try store.updateProfile(userID: users[0].id, update)
        }
        update.imageID = .set(document.id)
        #expect(throws: MessengerError.invalid("image_id \(document.id) is not a picture")) {
            try store.updateProfile(userID: users[0].id, update)
        }
        update.imageID = .set(9999)
        #expect(throws: MessengerError.self) { try store.updateProfile(userID: users[0].id, update) }
        #expect(try store.user(id: users[0].id)?.imageID == nil)

        update.imageID = .set(own.id)
        #expect(try store.updateProfile(userID: users[0].id, update).imageID == own.id)
        update.imageID = .set(nil)
        #expect(try store.updateProfile(userID: users[0].id, update).imageID == nil)
    }

    @Test func filesAreRecordedWithTheirUploader() throws {
        let alice = try store.login(username: "alice")
        let file = try store.insertFile(uploaderID: alice.id, kind: .audio, storedName: "abc.ogg", filename: "song.ogg",
                                        mimeType: "audio/ogg", sizeBytes: 12345)
        #expect(file.uploaderID == alice.id)
        #expect(file.kind == .audio)
        #expect(file.url == "/uploads/abc.ogg")
        #expect(file.sizeBytes == 12345)
        #expect(isRFC3339UTC(file.createdAt))
        #expect(try store.file(id: file.id) == file)
        #expect(try store.file(storedName: "abc.ogg") == file)
        #expect(try store.file(storedName: "nope.ogg") == nil)
        // Stored names are unique.
        #expect(throws: StorageError.self) {
            try store.insertFile(uploaderID: alice.id, kind: .audio, storedName: "abc.ogg", filename: "x", mimeType: nil, sizeBytes: 1)
        }
    }
}
