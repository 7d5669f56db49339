import COpenSSL
import Foundation

/// The generated JWT secret: created once, atomically, readable only by its owner.
///
/// Both processes may start at once on a fresh `DATA_DIR`; `O_EXCL` makes exactly one of them
/// the creator and the other reads what it wrote.
public enum SecretFile {
    public static func loadOrCreate(path: String) throws -> [UInt8] {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for _ in 0..<50 {
            if let existing = try read(path: path) { return existing }
            let secret = try generate()
            let temporary = path + ".\(getpid()).tmp"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw ConfigurationError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
            let line = secret + [UInt8(ascii: "\n")]
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
            close(fd)
            guard written == line.count else { throw ConfigurationError("cannot write \(temporary)") }
            // link() fails if the secret already exists: then the other process won.
            let linked = link(temporary, path) == 0
            unlink(temporary)
            if linked { return secret }
            usleep(20_000)
        }
        throw ConfigurationError("cannot create or read \(path)")
    }

    private static func read(path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read \(path)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.utf8.count >= 16 else { throw ConfigurationError("\(path) holds no usable secret") }
        return Array(text.utf8)
    }

    private static func generate() throws -> [UInt8] {
        var random = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&random, Int32(random.count)) == 1 else {
            throw ConfigurationError("OpenSSL could not generate random bytes")
        }
        let hex = random.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
        }.joined()
        return Array(hex)
    }
}
