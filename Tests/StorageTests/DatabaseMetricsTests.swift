import Domain
import Foundation
import Storage
import Testing

@Suite struct DatabaseMetricsTests {
    private func value(_ name: String, in export: MetricsExport) -> Double? {
        let text = String(decoding: export.render(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    @Test func aWriterThatFindsTheLockHeldCountsOneWaitAndItsRetries() throws {
        let database = try TestDatabase()
        _ = try database.migratedStore()
        let export = MetricsExport()
        let holder = try database.connection()
        try holder.execute("BEGIN IMMEDIATE")
        let waiting = try Connection(path: database.path, busyTimeoutMilliseconds: 30,
                                     metrics: DatabaseMetrics(factory: export.factory))
        #expect(throws: StorageError.self) { try waiting.write {} }
        try holder.execute("ROLLBACK")
        #expect(value("messenger_db_busy_waits_total", in: export) == 1)
        // 20 tries 100 µs apart, then one a millisecond until the 30 ms are spent.
        let retries = try #require(value("messenger_db_busy_retries_total", in: export))
        #expect(retries >= 20 && retries <= 60)
        try waiting.write {}
        #expect(value("messenger_db_busy_waits_total", in: export) == 1)
    }

    @Test func groupCommitsRecordTheirDurationAndBatchSize() throws {
        let database = try TestDatabase()
        let store = try database.migratedStore()
        let export = MetricsExport()
        let metrics = DatabaseMetrics(factory: export.factory)
        let result = metrics.commit(count: 3) { 42 }
        #expect(result == 42)
        _ = metrics.commit(count: 300) { 0 }
        let text = String(decoding: export.render(), as: UTF8.self)
        #expect(text.contains("messenger_db_commit_duration_seconds_count 2\n"))
        #expect(text.contains(#"messenger_db_commit_batch_size_bucket{le="4.0"} 1"#))
        #expect(text.contains(#"messenger_db_commit_batch_size_bucket{le="256.0"} 1"#))
        #expect(text.contains(#"messenger_db_commit_batch_size_bucket{le="512.0"} 2"#))
        #expect(text.contains("messenger_db_commit_batch_size_sum 303.0\n"))
        _ = store
    }
}
