import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport

/// A session key's ERC-1271 signature of typed data through SmartSession (ERC-7739 nested typed
/// data, spec §10): the layout against the contract vectors, the digest against eth-account, and
/// the checks SmartSession makes before its validator sees the signature.
@Suite("Typed data a session key signs for the account (ERC-7739)")
struct NestedTypedDataTests {
    /// The signatures the deployed SmartSession judged (case 13): each is laid out exactly as
    /// `NestedTypedData.signature` lays out its parts behind the account's routing, and the
    /// contents the contract refused are those the session's ERC7739Context does not list.
    @Test func contractVectorLayoutAndContentChecks() throws {
        let c = try Fixtures.json("cases/13-erc7739-session-1271.json")
        let session = try Session(json: c["session"]!)
        let checker = PolicyChecker(session: session, account: try Address(try c["account"]!.string("address")))
        let now = UInt64(try c.string("blockTimestamp"))!
        let checks = try #require(c["erc1271Checks"]?.arrayValue)
        var laidOut = 0
        for check in checks where try check.string("expect") != "erc7739-detected" {
            let label = try check.string("label")
            let signature = try check.bytes("signature")
            // routing (20) ‖ permissionId (32) ‖ ECDSA (65) ‖ separator (32) ‖ contents (32) ‖ description ‖ uint16
            let length = Int(signature[signature.count - 2]) << 8 | Int(signature[signature.count - 1])
            let tail = Array(signature[(20 + 32 + 65)...])
            let description = try #require(String(bytes: tail[64..<(tail.count - 2)], encoding: .utf8))
            #expect(description.utf8.count == length, "\(label)")
            let message = try NestedTypedData(appDomainSeparator: Bytes32(tail[0..<32]), contents: Bytes32(tail[32..<64]), contentsDescription: description)
            let rebuilt = AccountKind.erc7579Reference.erc1271Signature(
                validator: SmartSessionAddresses.smartSession,
                signature: message.signature(permissionId: session.permissionId, sessionSignature: Array(signature[52..<117])))
            #expect(rebuilt == signature, "\(label)")
            let read = try NestedTypedData.parse(Array(signature[20...]))
            #expect(read.permissionId == session.permissionId && read.sessionSignature == Array(signature[52..<117]) && read.message == message, "\(label)")
            laidOut += 1
            let verdict = checker.checkSignedMessage(message, now: now)
            if label.contains("not enabled") {
                guard case .failure(let denial) = verdict else { Issue.record("\(label): allowed"); continue }
                #expect(denial.reason == "content_not_allowed", "\(label): \(denial)")
            } else {
                #expect(throws: Never.self, "\(label)") { try verdict.get() }
            }
            if label.hasPrefix("honest") { #expect(message.appHash == (try check.bytes32("hash")), "\(label)") }
        }
        #expect(laidOut == 5)
    }

    /// A thousand random documents, each with a random account domain: the digest the key signs
    /// is the one eth-account gives the TypedDataSign document a wallet would show, the hash an
    /// application passes is the document's own digest, and the signature (coincurve's, over
    /// that digest) is laid out byte for byte as SmartSession reads it.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func randomDocumentsMatchEthAccount() throws {
        let cases = try Oracle.cases("erc7739", count: 1000)
        #expect(cases.count == 1000)
        for c in cases {
            let context = "seed \(Oracle.seed), document \(c["document"]!.serialized.prefix(300))"
            let document = try TypedData(json: c["document"]!)
            let message = try NestedTypedData(document, explicit: c["explicit"] == .bool(true))
            let d = c["accountDomain"]!
            let domain = AccountDomain(name: try d.string("name"), version: try d.string("version"), chainId: try UInt256(parsing: try d.string("chainId")),
                                       verifyingContract: try Address(try d.string("verifyingContract")), salt: try d.bytes32("salt"))
            #expect(message.contentsDescription == (try c.string("contentsDescription")), "\(context)")
            #expect(try message.appDomainSeparator == c.bytes32("appDomainSeparator") && message.contents == c.bytes32("contents"), "\(context)")
            #expect(try message.appHash == c.bytes32("appHash") && message.appHash == document.digest, "\(context)")
            let digest = message.digest(in: domain)
            #expect(digest == (try c.bytes32("digest")), "\(context)")
            let key = try Secp256k1.PrivateKey(hex: try c.string("privateKey"))
            #expect(message.signature(permissionId: try c.bytes32("permissionId"), sessionSignature: key.sign(digest: digest).bytes) == (try c.bytes("signature")), "\(context)")
        }
    }

    static let mail = """
        {"types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                   "Mail": [{"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}],
                   "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}]},
         "primaryType": "Mail", "domain": {"name": "Ether Mail", "chainId": 1},
         "message": {"to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}, "contents": "Hello, Bob!"}}
        """

    /// The two descriptions of one document: its type alone, or followed by its name; the name
    /// SmartSession reads from either is the same, so the digest is too.
    @Test func implicitAndExplicitDescriptions() throws {
        let document = try TypedData(parsing: Self.mail)
        let implicit = try NestedTypedData(document, explicit: false), explicit = try NestedTypedData(document, explicit: true)
        let type = "Mail(Person to,string contents)Person(string name,address wallet)"
        #expect(implicit.contentsDescription == type && explicit.contentsDescription == type + "Mail")
        #expect(implicit.contentsName == "Mail" && explicit.contentsName == "Mail" && implicit.contentsType == type && explicit.contentsType == type)
        let domain = AccountDomain(name: "rhinestone safe7579", version: "v1.0.0", chainId: 1, verifyingContract: try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6"))
        #expect(implicit.digest(in: domain) == explicit.digest(in: domain))
        var other = domain
        other.version = "v1.0.1"
        #expect(implicit.digest(in: other) != implicit.digest(in: domain))
        let tail = implicit.signature(permissionId: .zero, sessionSignature: [UInt8](repeating: 7, count: 65)).suffix(2)
        #expect(Array(tail) == [0, UInt8(type.utf8.count)])
        // Read byte by byte, as SmartSession reads it: a combining mark after the last `)` makes
        // one character with it, yet the name starts after that byte.
        let marked = try NestedTypedData(appDomainSeparator: .zero, contents: .zero, contentsDescription: "Mail(address to)\u{301}Mail")
        #expect(marked.contentsType == "Mail(address to)" && marked.contentsName == "\u{301}Mail")
    }

    /// Names SmartSession would read as invalid (and then compute a hash nobody signed) are
    /// refused before anything is signed.
    @Test(arguments: ["mail(address to)", "(address to)", "Mail(address to)ma il", "Mail(address to)a", "no parenthesis", "Mail(address to)X,Y"])
    func descriptionsSmartSessionWouldMisread(_ description: String) {
        #expect(throws: SmartSessionError.self, "\(description)") {
            try NestedTypedData(appDomainSeparator: .zero, contents: .zero, contentsDescription: description)
        }
    }

    /// What cannot be SmartSession's part of a signature is refused, not trapped on.
    @Test func damagedSignaturesAreRefused() throws {
        let good = try NestedTypedData(appDomainSeparator: .zero, contents: .zero, contentsDescription: "Mail(address to)Mail")
            .signature(permissionId: .zero, sessionSignature: [UInt8](repeating: 1, count: 65))
        #expect(try NestedTypedData.parse(good).sessionSignature.count == 65)
        var tooLong = good
        tooLong[tooLong.count - 2] = 0xff
        // A byte of the name that is no UTF-8: a name SmartSession would take, but not text.
        var notText = good
        notText[notText.count - 4] = 0xff
        for bytes in [Array(good.prefix(97)), tooLong, notText, [UInt8](repeating: 0, count: 98)] {
            #expect(throws: SmartSessionError.self) { try NestedTypedData.parse(bytes) }
        }
    }

    @Test func theDomainAloneIsNoContents() throws {
        let document = try TypedData(parsing: #"{"types": {}, "primaryType": "EIP712Domain", "domain": {"name": "x"}}"#)
        #expect(throws: SmartSessionError.self) { try NestedTypedData(document, explicit: false) }
    }

    /// SmartSession's ERC-1271 checks before the session validator: the contents listed under
    /// the application's domain, at least one ERC-1271 policy, each passing; TimeFramePolicy's
    /// ERC-1271 window closes at validUntil, where a user operation's includes it.
    @Test func policiesAndContents() throws {
        let document = try TypedData(parsing: Self.mail)
        let message = try NestedTypedData(document, explicit: false)
        let account = try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
        func verdict(_ contexts: [ERC7739Context], _ policies: [PolicyConfig], now: UInt64 = 1_000, raw: [PolicyData] = []) -> String {
            let session = Session(sessionValidator: SmartSessionAddresses.ownableValidator, sessionValidatorInitData: [], salt: .zero,
                                  erc7739Policies: ERC7739Data(allowedERC7739Content: contexts, erc1271Policies: policies.map(\.policyData) + raw))
            switch PolicyChecker(session: session, account: account).checkSignedMessage(message, now: now) {
            case .success: return "ok"
            case .failure(let denial): return denial.reason
            }
        }
        let listed = [ERC7739Context(appDomainSeparator: message.appDomainSeparator, contentNames: [message.contentsDescription])]
        #expect(verdict(listed, [.sudo]) == "ok")
        #expect(verdict([ERC7739Context(appDomainSeparator: message.appDomainSeparator, contentNames: [message.contentsDescription + "Mail"])], [.sudo]) == "content_not_allowed")
        #expect(verdict([ERC7739Context(appDomainSeparator: .zero, contentNames: [message.contentsDescription])], [.sudo]) == "content_not_allowed")
        #expect(verdict([], [.sudo]) == "content_not_allowed")
        #expect(verdict(listed, []) == "no_policies")
        #expect(verdict(listed, [.timeFrame(validUntil: 2_000, validAfter: 1_000)], now: 1_000) == "ok")
        #expect(verdict(listed, [.timeFrame(validUntil: 2_000, validAfter: 1_000)], now: 999) == "not_yet_valid")
        #expect(verdict(listed, [.timeFrame(validUntil: 2_000, validAfter: 1_000)], now: 1_999) == "ok")
        #expect(verdict(listed, [.timeFrame(validUntil: 2_000, validAfter: 1_000)], now: 2_000) == "expired")
        #expect(verdict(listed, [.timeFrame(validUntil: 0, validAfter: 500)], now: 1 << 40) == "ok")
        #expect(verdict(listed, [.sudo, .timeFrame(validUntil: 0, validAfter: 0)]) == "policy_reverted")
        #expect(verdict(listed, [.sudo, .usageLimit(5)]) == "policy_reverted")
        #expect(verdict(listed, [.sudo], raw: [PolicyData(policy: try Address("0x00000000000000000000000000000000000000ff"), initData: [])]) == "unknown_policy")
    }
}
