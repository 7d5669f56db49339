import Domain
import Testing

@Suite struct GroupDraftTests {
    private func group(_ json: String) throws -> GroupDraft {
        try GroupDraft(JSONFields(parsing: Array(json.utf8)))
    }

    @Test func valid() throws {
        let draft = try group(#"{"name":"Team","participants":[2,3]}"#)
        #expect(draft.name == "Team")
        #expect(draft.participants == [2, 3])
        #expect(try group(#"{"name":"Solo","participants":[]}"#).participants.isEmpty)
    }

    @Test func nameRules() {
        #expect(throws: ValidationError("name is required")) { try group(#"{"participants":[2]}"#) }
        #expect(throws: ValidationError("name is required")) { try group(#"{"name":null,"participants":[2]}"#) }
        #expect(throws: ValidationError("name must not be empty")) { try group(#"{"name":"","participants":[2]}"#) }
        #expect(throws: ValidationError("name must not be empty")) { try group(#"{"name":" \t ","participants":[2]}"#) }
        #expect(throws: ValidationError("name must be a string, got number")) { try group(#"{"name":5,"participants":[2]}"#) }
        #expect(throws: ValidationError("name must be at most 128 characters")) {
            try group(#"{"name":"\#(String(repeating: "n", count: 129))","participants":[2]}"#)
        }
        #expect(throws: Never.self) { try group(#"{"name":"\#(String(repeating: "n", count: 100))","participants":[2]}"#) }
    }

    @Test func participantRules() {
        #expect(throws: ValidationError("participants is required")) { try group(#"{"name":"T"}"#) }
        #expect(throws: ValidationError("participants must be an array, got number")) { try group(#"{"name":"T","participants":2}"#) }
        for bad in [#"["2"]"#, "[0]", "[-1]", "[1.5]", "[null]", "[99999999999999999999]", "[[1]]"] {
            #expect(throws: ValidationError("participants must be positive integer user ids")) {
                try group(#"{"name":"T","participants":\#(bad)}"#)
            }
        }
        let tooMany = (1...1001).map(String.init).joined(separator: ",")
        #expect(throws: ValidationError("a group may have at most 1000 participants")) {
            try group(#"{"name":"T","participants":[\#(tooMany)]}"#)
        }
    }
}
