import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A direct child process started with `posix_spawn`, with an empty signal mask and default
/// signal dispositions, in its own process group.
///
/// Why not Foundation's `Process`: it spawns from a thread of this test process, whose
/// threads block most signals, and the child inherits that mask. NSD never unblocks SIGTERM,
/// so a `Process`-started NSD ignores SIGTERM until killed (seen: 3 s per stop).
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `pid` is immutable; `exited` is only touched by `stop()`/`deinit`, which
    // tests call from one place.
    let pid: pid_t
    private var exited = false

    /// `stdout` and `stderr` name files for the child's output (default: discarded).
    init(_ path: String, _ arguments: [String], stdout: String = "/dev/null", stderr: String = "/dev/null") throws {
        pid = try Self.spawn(path, arguments, stdout: stdout, stderr: stderr)
    }

    /// The one way the tests start a child (NSD, `vpcdns serve`): `posix_spawn` with an empty
    /// signal mask, default dispositions, its own process group, standard input from
    /// /dev/null, standard output and error to the given files, and nothing else inherited.
    static func spawn(_ path: String, _ arguments: [String], stdout: String = "/dev/null", stderr: String = "/dev/null") throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of this process leaks into the child: NIO's sockets are not all
        // close-on-exec, and a child holding a test's socket keeps its port bound (a fake
        // upstream "closed" by the test would stay in use) and skews /proc/PID/fd counts.
        Self.closeFrom(3, &actions)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, environ)
        guard rc == 0 else { throw FixtureError("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// glibc 2.34's `posix_spawn_file_actions_addclosefrom_np`, found at run time (the Glibc
    /// module does not export it). Without it, every descriptor above 2 is marked close-on-exec.
    private static func closeFrom(_ lowest: Int32, _ actions: inout posix_spawn_file_actions_t) {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(sym, to: AddCloseFrom.self)(&actions, lowest)
            return
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in fds.compactMap({ Int32($0) }) where fd >= lowest {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    var isRunning: Bool {
        guard !exited else { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        // ECHILD: reaped elsewhere, and the pid may be reused by now: never signal it again.
        if r == pid || (r == -1 && errno == ECHILD) { exited = true }
        return !exited
    }

    /// SIGTERM, wait up to 3 s, then SIGKILL to the whole process group; always reaped.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<300 where isRunning { usleep(10_000) }
        if isRunning {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            exited = true
        }
    }

    deinit { stop() }
}
