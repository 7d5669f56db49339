/// Whether `bytes` are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF). A text frame that is not must fail the connection with 1007 (RFC 6455
/// 8.1), before anything in it is looked at.
func isValidUTF8<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
    var index = bytes.startIndex
    while index != bytes.endIndex {
        let lead = bytes[index]
        bytes.formIndex(after: &index)
        if lead < 0x80 { continue }
        let count: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF  // the range of the first continuation byte
        switch lead {
        case 0xC2...0xDF: count = 1
        case 0xE0: count = 2; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 2
        case 0xED: count = 2; high = 0x9F
        case 0xF0: count = 3; low = 0x90
        case 0xF1...0xF3: count = 3
        case 0xF4: count = 3; high = 0x8F
        default: return false
        }
        for position in 0..<count {
            guard index != bytes.endIndex else { return false }
            let byte = bytes[index]
            if position == 0 ? !(low...high).contains(byte) : !(0x80...0xBF).contains(byte) { return false }
            bytes.formIndex(after: &index)
        }
    }
    return true
}
