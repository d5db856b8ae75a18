#include "unix_sockets.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "sockets.h"

namespace logcaster {

void BoundPath::Remember(const std::string& path) {
  struct stat st;
  if (path.empty() || path[0] == '\0' || stat(path.c_str(), &st) != 0) return;
  path_ = path;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
}

void BoundPath::Unlink() {
  if (path_.empty()) return;
  struct stat st;
  if (stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) unlink(path_.c_str());
  path_.clear();
}

int UnixAddress(const std::string& path, sockaddr_un* sa, socklen_t* len, std::string* err) {
  std::memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (path.empty()) { *err = "empty Unix socket path"; return -EINVAL; }
#ifndef __linux__
  if (path[0] == '\0') { *err = "abstract Unix socket names exist only on Linux"; return -EINVAL; }
#endif
  // A file path needs its terminating NUL; an abstract name is exactly its bytes.
  const size_t need = path.size() + (path[0] == '\0' ? 0 : 1);
  if (need > sizeof sa->sun_path) {
    *err = "Unix socket path longer than " + std::to_string(sizeof sa->sun_path - 1) + " bytes: " + path;
    return -ENAMETOOLONG;
  }
  std::memcpy(sa->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + (path[0] == '\0' ? path.size() : need));
  return 0;
}

namespace {
// Printable form of a path for messages ("@name" for an abstract one).
std::string Shown(const std::string& path) { return path[0] == '\0' ? "@" + path.substr(1) : path; }

// Is a process accepting on the socket file at sa? Probed with a connect of the same type.
bool InUse(int type, const sockaddr_un& sa, socklen_t len) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // cannot tell: do not remove anything
  int r = connect(fd, reinterpret_cast<const sockaddr*>(&sa), len);
  int e = errno;
  close(fd);
  return r == 0 || e != ECONNREFUSED;
}
}  // namespace

int BindUnixPath(int fd, int type, const std::string& path, int mode, BoundPath* bound, std::string* err) {
  sockaddr_un sa;
  socklen_t len = 0;
  int r = UnixAddress(path, &sa, &len, err);
  if (r < 0) return r;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
    int e = errno;
    if (e != EADDRINUSE || path[0] == '\0') {
      *err = "bind " + std::string(std::strerror(e)) + " " + Shown(path);
      return -e;
    }
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      *err = "bind: " + path + " exists and is not a socket";
      return -EADDRINUSE;
    }
    if (InUse(type, sa, len)) {
      *err = "bind: " + path + " is in use by a running process";
      return -EADDRINUSE;
    }
    // Left behind by a process that is gone: replace it.
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      e = errno;
      *err = "cannot remove stale socket " + path + ": " + std::strerror(e);
      return -e;
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
      e = errno;
      *err = "bind " + std::string(std::strerror(e)) + " " + path;
      return -e;
    }
  }
  if (path[0] != '\0' && mode >= 0 && chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    int e = errno;
    unlink(path.c_str());
    *err = "chmod " + path + ": " + std::strerror(e);
    return -e;
  }
  bound->Remember(path);
  return 0;
}

int UnixListenSocket(const std::string& path, int mode, int backlog, BoundPath* bound, std::string* err) {
  int fd = NewSocket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) { *err = "socket: " + std::string(std::strerror(-fd)); return fd; }
  int r = BindUnixPath(fd, SOCK_STREAM, path, mode, bound, err);
  if (r < 0) { close(fd); return r; }
  if (listen(fd, backlog > 0 ? backlog : 65535) < 0) {
    int e = errno;
    close(fd);
    bound->Unlink();
    *err = "listen " + std::string(std::strerror(e)) + " " + Shown(path);
    return -e;
  }
  return fd;
}

int UnixConnectSocket(const std::string& path, bool* in_progress, std::string* err) {
  sockaddr_un sa;
  socklen_t len = 0;
  int r = UnixAddress(path, &sa, &len, err);
  if (r < 0) return r;
  int fd = NewSocket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) { *err = "socket: " + std::string(std::strerror(-fd)); return fd; }
  *in_progress = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
    if (errno == EINPROGRESS) {
      *in_progress = true;
    } else {
      int e = errno;
      close(fd);
      *err = "connect " + std::string(std::strerror(e)) + " " + Shown(path);
      return -e;
    }
  }
  return fd;
}

std::string UnixPathOf(const sockaddr* sa, socklen_t len) {
  const size_t base = offsetof(sockaddr_un, sun_path);
  if (!sa || len <= base) return "";
  const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
  size_t n = len - base;
  if (un->sun_path[0] == '\0') return std::string(un->sun_path, n);  // abstract: every byte counts
  return std::string(un->sun_path, strnlen(un->sun_path, n));
}

}  // namespace logcaster
