/// A value that writes itself as JSON with exactly the fields of its contract.
///
/// Hand-written rather than `Encodable`: `JSONEncoder` drops `nil` optionals, but a seed
/// object must carry every one of its fields with `null` for an absent value (DESIGN,
/// invariant 3), and the relay writes each message once per fan-out, where speed matters.
public protocol JSONEncodable {
    func encode(to writer: inout JSONWriter)
}

/// Appends JSON to a byte buffer.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Encodes `value` into a fresh byte array.
    public static func encode(_ value: some JSONEncodable) -> [UInt8] {
        var writer = JSONWriter()
        value.encode(to: &writer)
        return writer.bytes
    }

    /// Encodes an array of values.
    public static func encode(_ values: [some JSONEncodable]) -> [UInt8] {
        // Room for small objects up front, so a long list is not copied on every doubling.
        var writer = JSONWriter(capacity: 256 + values.count * 256)
        writer.array(values)
        return writer.bytes
    }

    // MARK: Structure

    /// Writes `{ … }`, calling `body` to write the members.
    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
        body(&self)
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func array(_ values: [some JSONEncodable]) {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        // By index, so that each value is encoded in place rather than copied out first.
        for index in values.indices { values[index].encode(to: &self) }
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    public mutating func array(_ values: [Int64]) {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        for value in values { number(value) }
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes a member key; the next value written is its value.
    public mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    // MARK: Members

    public mutating func field(_ name: StaticString, _ value: Int64) {
        key(name)
        number(value)
    }

    public mutating func field(_ name: StaticString, _ value: Int64?) {
        key(name)
        if let value { number(value) } else { null() }
    }

    public mutating func field(_ name: StaticString, _ value: String) {
        key(name)
        string(value)
    }

    public mutating func field(_ name: StaticString, _ value: String?) {
        key(name)
        if let value { string(value) } else { null() }
    }

    public mutating func field(_ name: StaticString, _ value: some JSONEncodable) {
        key(name)
        value.encode(to: &self)
    }

    public mutating func field(_ name: StaticString, _ values: [some JSONEncodable]) {
        key(name)
        array(values)
    }

    public mutating func field(_ name: StaticString, _ values: [Int64]) {
        key(name)
        array(values)
    }

    // MARK: Scalars

    public mutating func null() {
        separate()
        bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])  // null
        needsComma = true
    }

    public mutating func number(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // The digits of |value|, at most 19, found last first into a small stack buffer.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var magnitude = value.magnitude
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
        needsComma = true
    }

    /// Writes a finite double in Swift's shortest round-tripping form; JSON has no NaN or
    /// infinity, so those become `null`.
    public mutating func number(_ value: Double) {
        guard value.isFinite else { return null() }
        separate()
        bytes.append(contentsOf: Array(value.description.utf8))
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        let literal: StaticString = value ? "true" : "false"
        literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
        needsComma = true
    }

    public mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        // Most strings need no escape: copied in one go from their UTF-8 (a native string's
        // own storage; `withUTF8` makes a bridged one contiguous first).
        var value = value
        value.withUTF8 { utf8 in
            if Self.needsNoEscape(utf8) {
                bytes.append(contentsOf: utf8)
            } else {
                appendEscaped(utf8)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                          hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    private static func needsNoEscape(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in utf8 where needsEscape(byte) { return false }
        return true
    }

    /// Writes a value that is already JSON (a stored event's `d`), as it is.
    public mutating func raw(_ json: some Collection<UInt8>) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }
}

extension JSON: JSONEncodable {
    public func encode(to writer: inout JSONWriter) {
        switch self {
        case .null: writer.null()
        case .bool(let value): writer.bool(value)
        case .int(let value): writer.number(value)
        case .double(let value): writer.number(value)
        case .string(let value): writer.string(value)
        case .array(let values): writer.array(values)
        case .object(let members):
            writer.object { writer in
                for (name, value) in members.sorted(by: { $0.key < $1.key }) {
                    writer.dynamicKey(name)
                    value.encode(to: &writer)
                }
            }
        }
    }
}

extension JSONWriter {
    /// Writes a member key that is not known at compile time.
    public mutating func dynamicKey(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }
}
