import Domain
import Testing

@Suite struct RateLimitTests {
    @Test func parsesRateAndBurstOrOff() throws {
        #expect(try RateLimit.parse("10/30", name: "RATE_SEND") == RateLimit(rate: 10, burst: 30))
        #expect(try RateLimit.parse(" 0.17/3 ", name: "RATE_LOGIN") == RateLimit(rate: 0.17, burst: 3))
        #expect(try RateLimit.parse("0", name: "RATE_SEND") == nil)
    }

    @Test(arguments: ["", "10", "10/", "/30", "0/30", "-1/30", "10/0", "10/2.5", "abc/def", "inf/3", "nan/3", "10/30/1",
                      "2000000/3"])
    func refusesAnythingElseNamingTheVariable(_ raw: String) {
        let error = #expect(throws: ConfigurationError.self) { try RateLimit.parse(raw, name: "RATE_UPLOAD") }
        #expect(error?.description.hasPrefix("RATE_UPLOAD must be <tokens per second>/<burst>") == true)
    }

    @Test func configurationDefaultsAndOverrides() throws {
        let base = ["DATA_DIR": "/tmp/rate-limit-tests", "JWT_SECRET": "0123456789abcdef0123"]
        let defaults = try Configuration(environment: base).rateLimits
        #expect(defaults == RateLimits.defaults)
        #expect(defaults.loginPerAddress == RateLimit(rate: 2, burst: 100))
        var environment = base
        environment["RATE_SEND"] = "0"
        environment["RATE_SEARCH"] = "5/5"
        let set = try Configuration(environment: environment).rateLimits
        #expect(set.send == nil)
        #expect(set.search == RateLimit(rate: 5, burst: 5))
        environment["RATE_LOGIN"] = "fast"
        #expect(throws: ConfigurationError.self) { try Configuration(environment: environment) }
    }

    @Test func bucketArithmetic() {
        let limit = RateLimit(rate: 2, burst: 3)
        #expect(limit.refilled(0, elapsed: 1) == 2)
        #expect(limit.refilled(2.5, elapsed: 10) == 3)
        #expect(limit.refilled(1, elapsed: -5) == 1)  // a clock that went back adds nothing
        #expect(limit.wait(from: 0.5) == 0.25)
        let limited = RateLimited(retryAfter: 0.25, what: "messages")
        #expect(limited.message == "too many messages; retry in 0.3 s")
        #expect(limited.retryAfterSeconds == 1)
        #expect(limited.retryAfterMilliseconds == 0.25)
    }
}

@Suite struct DuplicateKeyTests {
    @Test func duplicateKeysAreRefusedAtEveryDepth() {
        for text in [#"{"a":1,"a":2}"#, #"{"x":{"b":1,"b":1}}"#, #"[{"c":null,"c":null}]"#, #"{"é":1,"e\u0301":2}"#] {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
        }
        #expect(throws: ValidationError("malformed JSON: duplicate key \"a\"")) {
            try JSONFields(parsing: Array(#"{"a":1,"a":2}"#.utf8))
        }
        #expect((try? JSONParser.parse(Array(#"{"a":1,"b":{"a":2}}"#.utf8))) != nil)  // same name, other objects
    }
}
