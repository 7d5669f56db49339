import Domain
import Foundation

/// `GET /healthz`: whether this backend can serve, for load balancers and `scripts/run`'s
/// supervisor. No token: it says nothing about users.
enum HealthRoutes {
    /// 200 `{"status":"ok"}` when the database answers a read and every relay of this host
    /// (`LOCAL_RELAYS`) accepts on its socket (`RelayProbe`); else 503 with each part's state,
    /// `{"status":"down","database":"ok","relay":"down"}`, and with several relays which are
    /// down (`"relays_down":[2]`, instance numbers), so that a supervisor restarts those.
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
        let relaysDown = context.relayHealth.downRelays(context.configuration.relaySockets, requestID: request.id)
        let relay = relaysDown.isEmpty
        if database && relay {
            return .json(bytes: Array(#"{"status":"ok"}"#.utf8), status: .ok)
        }
        var writer = JSONWriter(capacity: 64)
        writer.object {
            $0.field("status", "down")
            $0.field("database", database ? "ok" : "down")
            $0.field("relay", relay ? "ok" : "down")
            if context.configuration.relayInstances > 1 && !relay {
                $0.field("relays_down", relaysDown.map(Int64.init))
            }
        }
        return .json(bytes: writer.bytes, status: .serviceUnavailable)
    }
}
