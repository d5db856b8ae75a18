// Unix domain socket addresses: filesystem paths (a stale socket file from a dead
// process is replaced, a live one refused, the file removed again on close) and,
// on Linux, abstract names (a path starting with '\0': no file at all).
#pragma once
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>

namespace logcaster {

// The socket file a bind created, removed on close only while it is still that file
// (another process may have replaced it meanwhile).
class BoundPath {
 public:
  bool empty() const { return path_.empty(); }
  const std::string& path() const { return path_; }
  void Remember(const std::string& path);  // right after bind
  void Unlink();                           // idempotent
 private:
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// sockaddr_un for path (leading '\0': abstract name on Linux). 0 or -errno with *err.
int UnixAddress(const std::string& path, sockaddr_un* sa, socklen_t* len, std::string* err);
// Bind fd (of `type`, SOCK_STREAM or SOCK_DGRAM) to path. When the path holds a
// socket nobody accepts on (ECONNREFUSED), it is removed and the bind retried; a
// socket in use, or a file that is not a socket, is refused. mode >= 0: the file's
// permissions are set to it. 0 or -errno with *err.
int BindUnixPath(int fd, int type, const std::string& path, int mode, BoundPath* bound, std::string* err);
// A listening, non-blocking Unix stream socket; fd or -errno.
int UnixListenSocket(const std::string& path, int mode, int backlog, BoundPath* bound, std::string* err);
// A non-blocking connect to a Unix stream socket; fd or -errno. *in_progress when
// the kernel did not complete it at once.
int UnixConnectSocket(const std::string& path, bool* in_progress, std::string* err);
// The text form of a Unix socket address as JS sees it: the path, "\0name" for an
// abstract name, "" for an unnamed socket.
std::string UnixPathOf(const sockaddr* sa, socklen_t len);

}  // namespace logcaster
