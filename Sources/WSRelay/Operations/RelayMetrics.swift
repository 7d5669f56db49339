import CoreMetrics
import Domain
import Storage

/// The relay's metrics (swift-metrics handles, made with the process's Prometheus factory).
///
/// Nothing here is touched per frame on an event loop: deliveries are summed per round on the
/// storage thread, sockets counted at open and close, the stream positions read at scrape time.
struct RelayMetrics: Sendable {
    let factory: any MetricsFactory
    /// `messenger_ws_open_sockets`: WebSocket connections open now (identified or not).
    let openSockets: Meter
    /// `messenger_ws_connections_total`: WebSocket upgrades accepted.
    let connections: Counter
    /// `messenger_ws_deliveries_total`: frames the storage thread handed to sockets (live
    /// events, replays, READY/RESYNC, ACKs and ERRORs of sends).
    let deliveries: Counter
    /// `messenger_ws_outbound_drops_total`: frames dropped because a socket's outbound queue was
    /// full (the socket is then closed with 4008; later frames to it are dropped too).
    let outboundDrops: Counter
    /// `messenger_ws_registered_sockets`, set at scrape time: identified sockets that receive events.
    let registeredSockets: Meter
    /// `messenger_event_head_seq`, set at scrape time: the newest seq in the database.
    let headSeq: Meter
    /// `messenger_ws_delivered_seq`, set at scrape time: the seq the relay has fanned out through.
    let deliveredSeq: Meter
    /// `messenger_ws_event_lag`, set at scrape time: head − delivered, in events.
    let eventLag: Meter
    let database: DatabaseMetrics
    /// The malloc heap's gauges, set at scrape time.
    let heap: HeapMetrics

    init(factory: any MetricsFactory) {
        self.factory = factory
        openSockets = Meter(label: "messenger_ws_open_sockets", factory: factory)
        connections = Counter(label: "messenger_ws_connections_total", factory: factory)
        deliveries = Counter(label: "messenger_ws_deliveries_total", factory: factory)
        outboundDrops = Counter(label: "messenger_ws_outbound_drops_total", factory: factory)
        registeredSockets = Meter(label: "messenger_ws_registered_sockets", factory: factory)
        headSeq = Meter(label: "messenger_event_head_seq", factory: factory)
        deliveredSeq = Meter(label: "messenger_ws_delivered_seq", factory: factory)
        eventLag = Meter(label: "messenger_ws_event_lag", factory: factory)
        database = DatabaseMetrics(factory: factory)
        heap = HeapMetrics(factory: factory)
    }

    /// Records nothing: unit tests.
    static let disabled = RelayMetrics(factory: NOOPMetricsHandler.instance)

    /// `messenger_ws_closes_total{code, by}`: a closed WebSocket, with the close code it ended
    /// with and who sent it first (`server`, `client`, or `none` when the socket dropped without
    /// a close frame, code 1006). Once per connection, so the registry lookup is affordable.
    func recordClose(code: UInt16, by initiator: String) {
        Counter(label: "messenger_ws_closes_total", dimensions: [("code", String(code)), ("by", initiator)],
                factory: factory).increment()
    }

    /// Sets the scrape-time gauges.
    func recordPositions(head: Int64, delivered: Int64, registered: Int) {
        headSeq.set(head)
        deliveredSeq.set(delivered)
        eventLag.set(max(0, head - delivered))
        registeredSockets.set(registered)
    }
}
