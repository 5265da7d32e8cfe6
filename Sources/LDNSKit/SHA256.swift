import CLDNS

/// SHA-256 through libldns (which links OpenSSL anyway), used at load time to derive the
/// default endpoint DNS suffix and hosted-zone id (config.md).
public enum SHA256 {
    public static func hex(_ text: String) -> String {
        var data = Array(text.utf8)
        var digest = [UInt8](repeating: 0, count: 32)
        data.withUnsafeMutableBufferPointer { d in
            digest.withUnsafeMutableBufferPointer { out in
                _ = ldns_sha256(d.baseAddress, UInt32(d.count), out.baseAddress)
            }
        }
        let hexDigits = Array("0123456789abcdef")
        return String(digest.flatMap { [hexDigits[Int($0 >> 4)], hexDigits[Int($0 & 0xf)]] })
    }
}
