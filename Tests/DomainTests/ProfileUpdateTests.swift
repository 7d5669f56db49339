import Domain
import Testing

@Suite struct ProfileUpdateTests {
    private func update(_ json: String) throws -> ProfileUpdate {
        try ProfileUpdate(JSONFields(parsing: Array(json.utf8)))
    }

    @Test func emptyObjectKeepsEverything() throws {
        let change = try update("{}")
        #expect(change.displayName == .keep)
        #expect(change.bio == .keep)
        #expect(change.imageID == .keep)
        #expect(change == ProfileUpdate())
    }

    @Test func setsOnlyWhatIsSent() throws {
        let change = try update(#"{"display_name":"Alice A"}"#)
        #expect(change.displayName == .set("Alice A"))
        #expect(change.bio == .keep)
        #expect(change.imageID == .keep)
    }

    @Test func nullClears() throws {
        let change = try update(#"{"display_name":null,"bio":null,"image_id":null}"#)
        #expect(change.displayName == .set(nil))
        #expect(change.bio == .set(nil))
        #expect(change.imageID == .set(nil))
    }

    @Test func everyField() throws {
        let change = try update(#"{"display_name":"A","bio":"about me","image_id":12}"#)
        #expect(change.displayName == .set("A"))
        #expect(change.bio == .set("about me"))
        #expect(change.imageID == .set(12))
    }

    @Test func unknownFieldsAreRefused() {
        #expect(throws: ValidationError("unknown field username; expected display_name, bio or image_id")) {
            try update(#"{"username":"eve"}"#)
        }
        #expect(throws: ValidationError("unknown field id; expected display_name, bio or image_id")) {
            try update(#"{"id":2,"bio":"x"}"#)
        }
    }

    @Test func lengthLimits() throws {
        #expect(try update(#"{"display_name":"\#(String(repeating: "d", count: 64))"}"#).displayName == .set(String(repeating: "d", count: 64)))
        #expect(throws: ValidationError("display_name must be at most 64 characters")) {
            try update(#"{"display_name":"\#(String(repeating: "d", count: 65))"}"#)
        }
        #expect(try update(#"{"bio":"\#(String(repeating: "b", count: 500))"}"#).bio == .set(String(repeating: "b", count: 500)))
        #expect(throws: ValidationError("bio must be at most 500 characters")) {
            try update(#"{"bio":"\#(String(repeating: "b", count: 501))"}"#)
        }
    }

    @Test func wrongTypes() {
        #expect(throws: ValidationError("display_name must be a string, got number")) { try update(#"{"display_name":1}"#) }
        #expect(throws: ValidationError("bio must be a string, got array")) { try update(#"{"bio":[]}"#) }
        #expect(throws: ValidationError("image_id must be an integer, got string")) { try update(#"{"image_id":"3"}"#) }
        #expect(throws: ValidationError("image_id must be a positive integer")) { try update(#"{"image_id":0}"#) }
        #expect(throws: ValidationError("image_id must be an integer within 64 bits")) {
            try update(#"{"image_id":99999999999999999999}"#)
        }
    }
}
