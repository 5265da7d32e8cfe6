import Foundation

/// The fuzz executables without libFuzzer: run the harness on every file named (folders:
/// every file inside), print the broken invariants, exit 1 if there were any. Replays a
/// corpus or a crash file in a normal build.
public enum FileRunner {
    public static func main(name: String, harness: (UnsafeRawBufferPointer) -> [String]) -> Never {
        let args = CommandLine.arguments.dropFirst()
        if args.isEmpty {
            FileHandle.standardError.write(Data("usage: \(name) FILE|DIR ... (built with -sanitize=fuzzer: libFuzzer's options)\n".utf8))
            exit(2)
        }
        var files: [String] = []
        for a in args {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: a, isDirectory: &isDir), isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: a)) ?? []
                files += names.sorted().map { a + "/" + $0 }
            } else {
                files.append(a)
            }
        }
        var failed = 0
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else {
                print("\(f): cannot read")
                failed += 1
                continue
            }
            let problems = data.withUnsafeBytes { harness($0) }
            if !problems.isEmpty {
                failed += 1
                for p in problems { print("\(f): \(p)") }
            }
        }
        print("\(name): \(files.count) inputs, \(failed) failed")
        exit(failed == 0 ? 0 : 1)
    }

    /// What the libFuzzer entry points do with broken invariants: print them and abort, so
    /// libFuzzer saves the input as a crash.
    public static func failIfAny(_ problems: [String]) {
        guard !problems.isEmpty else { return }
        for p in problems { FileHandle.standardError.write(Data("invariant broken: \(p)\n".utf8)) }
        abort()
    }
}
