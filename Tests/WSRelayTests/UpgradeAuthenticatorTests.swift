import Domain
import NIOHTTP1
import Storage
import Testing
@testable import WSRelay

@Suite struct UpgradeAuthenticatorTests {
    let tokens = TokenService(secret: Array("0123456789abcdef0123456789abcdef".utf8))
    let revoked: RevokedSessions
    var authenticator: UpgradeAuthenticator { UpgradeAuthenticator(tokens: tokens, revokedSessions: revoked, now: { 1_000 }) }

    init() throws {
        revoked = try RevokedSessions(path: TestDatabase().path)
    }

    func head(_ uri: String, authorization: String? = nil, method: HTTPMethod = .GET) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }

    @Test func revokedAndSessionlessTokensAreRefused() {
        revoked.note([7], expiresAt: Int64.max)
        let token = tokens.issue(userID: 5, username: "eve", sessionID: 7, now: 1_000)
        #expect(authenticator.decide(head("/ws?token=\(token)")) == .refuse(status: .unauthorized, message: "session revoked; log in again"))
        let old = tokens.issue(userID: 5, username: "eve", now: 1_000)
        #expect(authenticator.decide(head("/ws?token=\(old)")) == .refuse(status: .unauthorized, message: "token predates sessions; log in again"))
    }

    @Test func headerQueryAndIdentify() {
        let token = tokens.issue(userID: 5, username: "eve", sessionID: 7, now: 1_000)
        let v1 = StreamOptions()
        #expect(authenticator.decide(head("/ws", authorization: "Bearer \(token)")) == .upgrade(identity: Identity(userID: 5, sessionID: 7), stream: v1))
        #expect(authenticator.decide(head("/ws?token=\(token)")) == .upgrade(identity: Identity(userID: 5, sessionID: 7), stream: v1))
        #expect(authenticator.decide(head("/ws")) == .upgrade(identity: nil, stream: v1))
    }

    @Test func protocolAndResumeFromTheQuery() {
        let token = tokens.issue(userID: 5, username: "eve", sessionID: 7, now: 1_000)
        #expect(authenticator.decide(head("/ws?v=2&token=\(token)")) == .upgrade(identity: Identity(userID: 5, sessionID: 7), stream: StreamOptions(version: .v2)))
        #expect(authenticator.decide(head("/ws?since=12")) == .upgrade(identity: nil, stream: StreamOptions(version: .v2, since: 12)))
        for bad in ["/ws?v=3", "/ws?v=", "/ws?since=-1", "/ws?since=abc", "/ws?since=1e3"] {
            guard case .refuse(let status, _) = authenticator.decide(head(bad)) else {
                Issue.record("\(bad) was not refused")
                continue
            }
            #expect(status == .badRequest)
        }
    }

    @Test func badTokensAreRefusedWith401() {
        let foreign = TokenService(secret: Array("another-secret-another-secret!!".utf8)).issue(userID: 5, username: "eve", sessionID: 7, now: 1_000)
        let expired = TokenService(secret: Array("0123456789abcdef0123456789abcdef".utf8), lifetime: 60)
            .issue(userID: 5, username: "eve", sessionID: 7, now: 0)
        for bad in ["Bearer garbage", "Bearer \(foreign)", "Bearer \(expired)", "Basic abc"] {
            guard case .refuse(let status, _) = authenticator.decide(head("/ws", authorization: bad)) else {
                Issue.record("\(bad) was accepted"); continue
            }
            #expect(status == .unauthorized)
        }
        guard case .refuse(.unauthorized, _) = authenticator.decide(head("/ws?token=\(foreign)")) else {
            Issue.record("query token with the wrong key was accepted"); return
        }
    }

    @Test func otherPathsAndMethods() {
        guard case .refuse(.notFound, _) = authenticator.decide(head("/other")) else { Issue.record("path"); return }
        guard case .refuse(.methodNotAllowed, _) = authenticator.decide(head("/ws", method: .POST)) else {
            Issue.record("method"); return
        }
    }
}
