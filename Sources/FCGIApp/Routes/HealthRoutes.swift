import Domain
import Foundation

/// `GET /healthz`: whether this backend can serve, for load balancers and `scripts/run`'s
/// supervisor. No token: it says nothing about users.
enum HealthRoutes {
    /// 200 `{"status":"ok"}` when the database answers a read and the relay accepts on its
    /// socket (`RelayProbe`); else 503 with each part's state,
    /// `{"status":"down","database":"ok","relay":"down"}`.
    static func check(_ request: inout Request, _ context: Context) throws -> Response {
        let database: Bool
        do {
            _ = try context.store.latestSeq()
            database = true
        } catch {
            context.logger.warning("health: the database did not answer",
                                   metadata: ["request_id": "\(request.id)", "error": "\(error)"])
            database = false
        }
        let relay = context.relayHealth.isAccepting(socketPath: context.configuration.relaySocketPath,
                                                    requestID: request.id)
        if database && relay {
            return .json(bytes: Array(#"{"status":"ok"}"#.utf8), status: .ok)
        }
        var writer = JSONWriter(capacity: 64)
        writer.object {
            $0.field("status", "down")
            $0.field("database", database ? "ok" : "down")
            $0.field("relay", relay ? "ok" : "down")
        }
        return .json(bytes: writer.bytes, status: .serviceUnavailable)
    }
}
