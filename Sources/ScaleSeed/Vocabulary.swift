/// The words messages are made of: made-up words of two to four syllables with Zipf
/// frequencies (rank r drawn in proportion to 1/(r+1)), like a language's, so that the most
/// common word is in about half of all messages and most words are rare. `rareWord` is
/// placed on its own, in about one message in 100,000.
struct Vocabulary {
    static let size = 30_000
    static let rareWord = "zyzzyva"
    private static let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "fe", "go", "hu", "ji", "pe",
                                    "qua", "ri", "su", "te", "ub", "wa", "xo", "ye", "zu", "bra", "cle", "dro", "fli",
                                    "gra", "pro", "stu", "tri", "an", "el", "in", "or", "um"]

    let words: [String]
    /// Inverse CDF on a grid: a uniform 20-bit number → a word's rank.
    private let table: [Int32]
    private static let tableBits = 20

    init(random: inout SeedRandom) {
        var seen: Set<String> = [Self.rareWord]
        var words: [String] = []
        while words.count < Self.size {
            var word = ""
            for _ in 0..<(2 + random.below(3)) { word += Self.syllables[random.below(Self.syllables.count)] }
            if seen.insert(word).inserted { words.append(word) }
        }
        self.words = words
        var weights = (0..<Self.size).map { 1.0 / Double($0 + 1) }
        let total = weights.reduce(0, +)
        for index in weights.indices { weights[index] /= total }
        var table = [Int32](repeating: 0, count: 1 << Self.tableBits)
        var cumulative = 0.0
        var rank = 0
        for slot in table.indices {
            let point = (Double(slot) + 0.5) / Double(table.count)
            while rank < Self.size - 1, cumulative + weights[rank] < point {
                cumulative += weights[rank]
                rank += 1
            }
            table[slot] = Int32(rank)
        }
        self.table = table
    }

    /// The most common word.
    var commonWord: String { words[0] }

    /// A message of 4 to 14 words.
    func message(_ random: inout SeedRandom, rareRate: Int) -> String {
        var text = ""
        text.reserveCapacity(96)
        let count = 4 + random.below(11)
        for index in 0..<count {
            if index > 0 { text += " " }
            text += words[Int(table[Int(random.next() >> UInt64(64 - Self.tableBits))])]
        }
        if random.below(rareRate) == 0 { text += " " + Self.rareWord }
        return text
    }
}
