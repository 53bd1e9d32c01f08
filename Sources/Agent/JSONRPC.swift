import EthereumCore

/// JSON-RPC 2.0 framing: one JSON object per line in, one per line out.
public enum JSONRPC {
    public static let maximumMessageSize = 1 << 20

    public struct Request: Sendable {
        public var id: JSONValue
        public var method: String
        public var params: JSONObject
    }

    /// A line that is not a valid request, with its id when it could be read.
    public struct Malformed: Error {
        public var id: JSONValue
        public var error: AgentError
    }

    /// Parses one line; a failure carries the id when it could be read.
    public static func parse(_ line: [UInt8]) -> Result<Request, Malformed> {
        let json: JSONValue
        do { json = try JSONValue(parsing: line) } catch {
            return .failure(Malformed(id: JSONValue.null, error: AgentError("bad_request", "parse error: \(error)", code: -32700)))
        }
        guard let object = json.objectValue else { return .failure(Malformed(id: JSONValue.null, error: AgentError("bad_request", "a request is a JSON object", code: -32600))) }
        let id = object["id"] ?? .null
        guard object["jsonrpc"] == "2.0" else { return .failure(Malformed(id: id, error: AgentError("bad_request", "jsonrpc must be \"2.0\"", code: -32600))) }
        guard let method = object["method"]?.stringValue else { return .failure(Malformed(id: id, error: AgentError("bad_request", "method must be a string", code: -32600))) }
        let params: JSONObject
        switch object["params"] {
        case nil, .null?: params = JSONObject()
        case .object(let o)?: params = o
        case .array(let a)? where a.count == 1 && a[0].objectValue != nil: params = a[0].objectValue!
        default: return .failure(Malformed(id: id, error: AgentError("bad_request", "params must be an object", code: -32602)))
        }
        return .success(Request(id: id, method: method, params: params))
    }

    public static func result(_ id: JSONValue, _ result: JSONValue) -> String {
        JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": id, "result": result])).serialized
    }

    public static func error(_ id: JSONValue, _ e: AgentError) -> String {
        JSONValue.object(JSONObject([
            "jsonrpc": "2.0", "id": id,
            "error": .object(JSONObject(["code": JSONValue(e.code), "message": .string(e.message), "data": .object(JSONObject(["reason": .string(e.reason)]))])),
        ])).serialized
    }
}
