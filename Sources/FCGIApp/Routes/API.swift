/// Every REST endpoint, in one table (DESIGN, "REST API").
enum API {
    static func router() -> Router {
        var router = Router()
        router.add("POST", "/login", AuthRoutes.login)
        router.add("POST", "/logout", AuthRoutes.logout)
        router.add("POST", "/logout/all", AuthRoutes.logoutAll)
        router.add("PUT", "/users/me/password", AuthRoutes.setPassword)
        router.add("GET", "/users/me/sessions", AuthRoutes.sessions)

        router.add("GET", "/users", UserRoutes.search)
        router.add("PATCH", "/users/me", UserRoutes.updateProfile)
        router.add("GET", "/users/me/blocks", UserRoutes.blocks)
        router.add("PUT", "/users/me/blocks/:uid", UserRoutes.block)
        router.add("DELETE", "/users/me/blocks/:uid", UserRoutes.unblock)
        router.add("GET", "/users/:user", UserRoutes.show)

        router.add("POST", "/chats/initiate", ChatRoutes.initiate)
        router.add("GET", "/chats", ChatRoutes.list)
        router.add("POST", "/chats", ChatRoutes.createGroup)
        router.add("GET", "/chats/:id", ChatRoutes.show)
        router.add("PATCH", "/chats/:id", MemberRoutes.rename)
        router.add("POST", "/chats/:id/read", ReadRoutes.markRead)
        router.add("GET", "/chats/:id/receipts", ReadRoutes.receipts)
        router.add("GET", "/chats/:id/members", MemberRoutes.list)
        router.add("POST", "/chats/:id/members", MemberRoutes.add)
        router.add("DELETE", "/chats/:id/members/:uid", MemberRoutes.remove)
        router.add("PATCH", "/chats/:id/members/:uid", MemberRoutes.setRole)
        router.add("GET", "/chats/:id/messages", MessageRoutes.history)
        router.add("POST", "/chats/:id/messages", MessageRoutes.post)
        router.add("PATCH", "/chats/:id/messages/:mid", MessageRoutes.edit)
        router.add("DELETE", "/chats/:id/messages/:mid", MessageRoutes.delete)
        router.add("PUT", "/chats/:id/messages/:mid/reactions/:emoji", MessageRoutes.react)
        router.add("DELETE", "/chats/:id/messages/:mid/reactions/:emoji", MessageRoutes.unreact)

        router.add("POST", "/upload", UploadRoutes.upload)

        // Protocol 2: the event stream for pull clients, and who is online.
        router.add("GET", "/events", EventRoutes.list)
        router.add("GET", "/presence", ReadRoutes.presence)
        router.add("GET", "/search", SearchRoutes.search)

        // Operations: readiness for load balancers and scripts/run (no token).
        router.add("GET", "/healthz", HealthRoutes.check)

        // Seed 001, the earlier API: messages addressed to a person.
        router.add("POST", "/send", LegacyRoutes.send)
        router.add("GET", "/history/:username", LegacyRoutes.history)
        return router
    }
}
