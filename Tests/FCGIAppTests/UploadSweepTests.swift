import Domain
@testable import FCGIApp
import Foundation
import Logging
import Storage
import Testing

/// What the start-up sweep removes from the uploads directory, alone and beside other FCGIApps.
@Suite struct UploadSweepTests {
    let app: TestApp
    let directory: String

    init() throws {
        app = try TestApp()
        directory = app.configuration.uploadsDirectory
    }

    private func put(_ name: String, age: TimeInterval) throws {
        let path = directory + "/" + name
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: path)
    }

    private func sweep(minimumAge: TimeInterval) throws {
        try UploadSweep.run(directory: directory, store: app.store, logger: Logger(label: "test"), minimumAge: minimumAge)
    }

    @Test func aloneItRemovesEveryPartialAndUnreferencedFile() throws {
        let orphan = UploadNaming.storedName(clientFilename: "a.png")
        try put(".upload-\(UUID().uuidString).part", age: 1)
        try put(orphan, age: 1)
        try put("operator-notes.txt", age: 1)
        try sweep(minimumAge: 0)
        #expect(try app.uploadsDirectoryContents() == ["operator-notes.txt"])
    }

    @Test func besideOtherInstancesItLeavesWhatMayStillBeInFlight() throws {
        let recentPart = ".upload-\(UUID().uuidString).part"
        let recentOrphan = UploadNaming.storedName(clientFilename: "b.png")
        let oldOrphan = UploadNaming.storedName(clientFilename: "c.png")
        try put(recentPart, age: 5)
        try put(recentOrphan, age: 5)
        try put(oldOrphan, age: UploadSweep.sharedMinimumAge + 60)
        try put(".upload-\(UUID().uuidString).part", age: UploadSweep.sharedMinimumAge + 60)
        try sweep(minimumAge: UploadSweep.sharedMinimumAge)
        #expect(try app.uploadsDirectoryContents() == [recentPart, recentOrphan].sorted())
    }

    @Test func onlyTheOneFCGIAppOfAHostAloneSweepsEverything() throws {
        func age(_ extra: [String: String]) throws -> TimeInterval {
            var environment = ["DATA_DIR": directory, "JWT_SECRET": "0123456789abcdef-secret"]
            environment.merge(extra) { _, new in new }
            return UploadSweep.minimumAge(try Configuration(environment: environment))
        }
        #expect(try age([:]) == 0)
        #expect(try age(["RELAY_INSTANCES": "2"]) == 0)
        #expect(try age(["FCGI_INSTANCES": "2"]) == UploadSweep.sharedMinimumAge)
        // Other hosts' relays: those hosts share the directory (nginx/messenger-front.conf).
        #expect(try age(["RELAY_INSTANCES": "2", "LOCAL_RELAYS": "1"]) == UploadSweep.sharedMinimumAge)
    }
}
