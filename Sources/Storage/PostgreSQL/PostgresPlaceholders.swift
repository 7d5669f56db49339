/// SQLite's statement parameters written as PostgreSQL's: `?NNN` becomes `$NNN`, and a bare
/// `?` the next number after the largest so far (SQLite's own numbering), so that one SQL text
/// with the same bound values can be prepared by either database.
///
/// Only parameters are rewritten, nothing else of the dialect. Text inside string literals
/// (`'…'`), quoted identifiers (`"…"`) and comments (`--`, `/* */`) is left alone. SQL that has
/// no `?` comes back as it was (PostgreSQL's own `$N` included).
enum PostgresPlaceholders {
    static func translate(_ sql: String) -> String {
        guard sql.utf8.contains(UInt8(ascii: "?")) else { return sql }
        let bytes = Array(sql.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 8)
        var largest = 0
        var index = 0
        func copy(until end: Int) {
            output.append(contentsOf: bytes[index..<end])
            index = end
        }
        /// Where the quoted text that starts at `index` ends (after its closing quote; a doubled
        /// quote inside is part of the text), or the end of the SQL.
        func endOfQuoted(_ quote: UInt8, from start: Int) -> Int {
            var position = start + 1
            while position < bytes.count {
                if bytes[position] == quote {
                    if position + 1 < bytes.count, bytes[position + 1] == quote {
                        position += 2
                        continue
                    }
                    return position + 1
                }
                position += 1
            }
            return bytes.count
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                copy(until: endOfQuoted(byte, from: index))
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                copy(until: bytes[index...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count)
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                var end = index + 2
                while end + 1 < bytes.count, !(bytes[end] == UInt8(ascii: "*") && bytes[end + 1] == UInt8(ascii: "/")) {
                    end += 1
                }
                copy(until: min(end + 2, bytes.count))
            case UInt8(ascii: "?"):
                var end = index + 1
                var number = 0
                while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) {
                    number = number * 10 + Int(bytes[end] - UInt8(ascii: "0"))
                    end += 1
                }
                if end == index + 1 { number = largest + 1 }
                largest = max(largest, number)
                output.append(UInt8(ascii: "$"))
                output.append(contentsOf: String(number).utf8)
                index = end
            default:
                output.append(byte)
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
