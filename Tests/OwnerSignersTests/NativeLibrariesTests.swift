import CFido2
import CPCSC
import CPKCS11
import Foundation
import OwnerSigners
import Testing
import TestSupport
import TestTraits

@Suite("The five C libraries link and answer")
struct NativeLibrariesTests {
    @Test func everyLinkedLibraryIsFound() {
        let report = NativeLibraries.report()
        #expect(report.map(\.name) == ["libsecp256k1", "OpenSSL", "libfido2", "pcsc-lite", "PKCS#11"])
        for lib in report where lib.name != "PKCS#11" {
            #expect(lib.path.map { FileManager.default.fileExists(atPath: $0) } == true, "\(lib.name): \(lib.path ?? "nil")")
        }
        #expect(report[1].version?.hasPrefix("3.") == true)
    }

    @Test func libfido2ListsDevices() {
        fido_init(0)
        let list = fido_dev_info_new(8)
        defer { var l = list; fido_dev_info_free(&l, 8) }
        var found = 0
        // No hidraw devices exist on a build machine: the call succeeds and finds none.
        #expect(fido_dev_info_manifest(list, 8, &found) == FIDO_OK)
    }

    @Test func pcscAnswersWithOrWithoutTheDaemon() {
        var context: SCARDCONTEXT = 0
        let rv = SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context)
        // Without pcscd the library itself says "no service"; any other answer is a broken install.
        #expect(rv == SCARD_S_SUCCESS || rv == SCARD_E_NO_SERVICE, "\(String(cString: pcsc_stringify_error(rv)))")
        if rv == SCARD_S_SUCCESS { SCardReleaseContext(context) }
    }

    /// A copy of the module, on the test process's token directory: SoftHSM's own configuration
    /// is root's alone, and the system's copy is another test's.
    @Test(.inProcessSoftHSM, .enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
    func pkcs11ModuleLoadsThroughTheStandardEntryPoint() throws {
        let module = try SoftHSM.process.privateModule()
        let handle = try #require(dlopen(module, RTLD_NOW), "dlopen \(module)")
        defer { dlclose(handle) }
        let symbol = try #require(dlsym(handle, "C_GetFunctionList"))
        let getFunctionList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
        var functions: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        #expect(getFunctionList(&functions) == CKR_OK)
        let list = try #require(functions)
        #expect(list.pointee.C_Initialize(nil) == CKR_OK)
        var info = CK_INFO()
        #expect(list.pointee.C_GetInfo(&info) == CKR_OK)
        #expect(info.cryptokiVersion.major == 2)
        #expect(list.pointee.C_Finalize(nil) == CKR_OK)
    }
}
