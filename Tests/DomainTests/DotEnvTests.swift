import Domain
import Foundation
import Testing

@Suite struct DotEnvTests {
    @Test func parsesTheUsualForms() {
        let text = """
            # a comment
            PORT=3001

            export DATA_DIR=/tmp/data
            JWT_SECRET="a secret # with a hash"
            SINGLE='single quoted'
              SPACED  =  value with spaces  
            INLINE=value # trailing comment
            EMPTY=
            EQUALS=a=b=c
            NOEQUALS
            =novalue
            QUOTE_ONE_SIDE="abc
            """
        let values = DotEnv.parse(text)
        #expect(values == [
            "PORT": "3001",
            "DATA_DIR": "/tmp/data",
            "JWT_SECRET": "a secret # with a hash",
            "SINGLE": "single quoted",
            "SPACED": "value with spaces",
            "INLINE": "value",
            "EMPTY": "",
            "EQUALS": "a=b=c",
            "QUOTE_ONE_SIDE": "\"abc",
        ])
    }

    @Test func handlesCRLFLineEndings() {
        #expect(DotEnv.parse("A=1\r\nB=2\r\n") == ["A": "1", "B": "2"])
    }

    @Test func laterLinesWin() {
        #expect(DotEnv.parse("A=1\nA=2") == ["A": "2"])
    }

    @Test func missingFileIsEmpty() {
        #expect(DotEnv.load(path: "/nonexistent/\(UUID().uuidString)/.env").isEmpty)
    }

    @Test func loadsAFile() throws {
        let path = FileManager.default.temporaryDirectory.path + "/dotenv-\(UUID().uuidString)"
        try "PORT=4000\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(DotEnv.load(path: path) == ["PORT": "4000"])
    }
}
