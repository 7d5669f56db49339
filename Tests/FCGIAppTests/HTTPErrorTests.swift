import CSQLite
import Domain
@testable import FCGIApp
import Foundation
@testable import Storage
import Testing

@Suite struct HTTPErrorTests {
    @Test func mapsKnownErrors() {
        let http = HTTPError(.contentTooLarge, "too big")
        #expect(HTTPError.from(http).error == http)
        #expect(HTTPError.from(ValidationError("bad")).error == HTTPError(.badRequest, "bad"))
        #expect(HTTPError.from(MessengerError.notFound("gone")).error == HTTPError(.notFound, "gone"))
        #expect(HTTPError.from(MessengerError.forbidden("no")).error == HTTPError(.forbidden, "no"))
        #expect(HTTPError.from(MessengerError.invalid("wrong")).error == HTTPError(.badRequest, "wrong"))
        #expect(HTTPError.from(TokenError.expired).error == HTTPError(.unauthorized, "token expired"))
        for error in [http, ValidationError("x"), MessengerError.notFound("x"), TokenError.badSignature] as [any Error] {
            #expect(!HTTPError.from(error).isServerFault)
        }
    }

    @Test func busyDatabaseIs503() {
        let mapped = HTTPError.from(StorageError(code: SQLITE_BUSY, message: "database is locked", sql: "BEGIN IMMEDIATE"))
        #expect(mapped.error == HTTPError(.serviceUnavailable, "the database is busy; retry shortly"))
        #expect(mapped.isServerFault)
    }

    @Test func unknownErrorsAre500WithAGenericMessage() {
        struct Internal: Error, CustomStringConvertible {
            var description: String { "secret internals: /var/lib/db password=hunter2" }
        }
        for error in [Internal(), StorageError(code: SQLITE_CONSTRAINT, message: "UNIQUE failed", sql: "INSERT INTO users"),
                      CocoaError(.fileNoSuchFile), UploadIOError(message: "disk full")] as [any Error] {
            let mapped = HTTPError.from(error)
            #expect(mapped.error == HTTPError(.internalServerError, "internal server error"))
            #expect(mapped.isServerFault)
        }
    }

    @Test func errorResponsesAreJSON() {
        let response = Response.error(.forbidden, #"no "way""#)
        #expect(response.status == .forbidden)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"no \"way\""}"#)
        #expect(response.headers.contains { $0.0 == "Content-Type" && $0.1 == "application/json; charset=utf-8" })
    }

    @Test func aStorageFailureInAHandlerReachesTheClientAsAGeneric500() throws {
        let app = try TestApp()
        let alice = try app.login("alice")
        let chatID = try app.request("POST", "/chats/initiate", token: alice.token, json: #"{"target_username":"alice"}"#)
            .fields().int("chat_id")
        try app.store.database.execute("DROP TABLE message_files")
        let response = app.request("GET", "/chats/\(chatID)/messages", token: alice.token)
        #expect(response.status == 500)
        #expect(response.text == #"{"error":"internal server error"}"#)
    }

    @Test func aBusyDatabaseInAHandlerIs503() throws {
        let app = try TestApp(busyTimeoutMilliseconds: 50)
        let holder = try Connection(path: app.configuration.databasePath)
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }
        let response = app.request("POST", "/login", json: #"{"username":"alice"}"#)
        #expect(response.status == 503)
        #expect(response.error == "the database is busy; retry shortly")
        try holder.execute("ROLLBACK")
        #expect(app.request("POST", "/login", json: #"{"username":"alice"}"#).status == 200)
    }
}
