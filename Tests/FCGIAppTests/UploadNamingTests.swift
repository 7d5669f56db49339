@testable import FCGIApp
import Testing

@Suite struct UploadNamingTests {
    @Test(arguments: [("photo.png", "png"), ("a.PNG", "png"), ("archive.tar.gz", "gz"), ("noext", "bin"), (".bashrc", "bin"),
                      ("a.", "bin"), ("a.toolongextension", "bin"), ("a.p-g", "bin"), ("a.p g", "bin"), ("../../x", "bin"),
                      ("x/../../etc.passwd/", "bin"), ("a.é", "bin"), ("", "bin"), ("a.mp4", "mp4"), ("a.1234567890", "1234567890")])
    func fileExtension(_ filename: String, _ ext: String) {
        #expect(UploadNaming.fileExtension(of: filename) == ext)
    }

    @Test func storedNameIsAUUIDAndASafeExtension() {
        let name = UploadNaming.storedName(clientFilename: "../../evil.PNG")
        #expect(name.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png/) != nil)
        #expect(UploadNaming.storedName(clientFilename: "x") != UploadNaming.storedName(clientFilename: "x"))
        #expect(UploadNaming.storedName(clientFilename: "a/b").hasSuffix(".bin"))
    }

    @Test func displayNameDropsControlCharactersAndIsBounded() {
        #expect(UploadNaming.displayName("a\u{0}b\nc\u{7F}d.png") == "abcd.png")
        #expect(UploadNaming.displayName("../../x") == "../../x")
        #expect(UploadNaming.displayName(nil) == "upload")
        #expect(UploadNaming.displayName("\n\r") == "upload")
        #expect(UploadNaming.displayName(String(repeating: "é", count: 300)) == String(repeating: "é", count: 255))
    }

    @Test(arguments: [("image/png", "image/png"), ("IMAGE/PNG", "image/png"), ("text/html; charset=utf-8", "text/html"),
                      (" application/pdf ", "application/pdf"), ("application/vnd.ms-excel", "application/vnd.ms-excel")])
    func wellFormedMimeTypes(_ raw: String, _ expected: String) {
        #expect(UploadNaming.mimeType(raw) == expected)
    }

    @Test(arguments: ["", "garbage", "a/b/c", "/png", "image/", "image /png", "image/p ng", "té/xt", "image/png\u{0}"])
    func malformedMimeTypes(_ raw: String) {
        #expect(UploadNaming.mimeType(raw) == nil)
    }

    @Test func missingMimeType() {
        #expect(UploadNaming.mimeType(nil) == nil)
    }
}
