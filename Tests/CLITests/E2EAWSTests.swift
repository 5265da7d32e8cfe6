import Foundation
import Testing

/// `scripts/e2e-aws.sh` (also `make e2e-aws`): network namespaces as an app host, a db host
/// and an endpoint host running moto_server behind TLS; the unchanged `aws ec2 describe-vpcs`
/// reaches it through vpcdns's endpoint private DNS from app, and fails fast from db. Run 1
/// with a hand-written config, run 2 with the one `vpcdns import aws` makes from moto's own
/// describe-* output. The script exits 77 (and says why) where namespaces, moto or awscli
/// are missing: this test then prints the reason loudly.
@Suite
struct E2EAWSTests {
    @Test func awsAPIThroughPrivateDNSWithUnchangedClients() throws {
        let oks = ["run 1 (hand-written config)", "run 2 (config from vpcdns import aws)"].flatMap { label in
            ["ok: \(label): app got moto's answer through the endpoint",
             "ok: \(label): db failed fast (public address, no route)",
             "ok: \(label): app's query decided endpoint-private-dns",
             "ok: \(label): db's query went upstream"]
        }
        // Bounded: the script takes about 20 s.
        _ = try CLI.checkDemoScript("e2e-aws.sh", limit: 150, suite: "E2EAWSTests", summary: "e2e-aws: 1 passed, 0 failed", oks: oks)
    }
}
