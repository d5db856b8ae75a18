// Socket set-up shared by every backend: non-blocking TCP listen/accept/connect
// sockets and addresses, portable across Linux and the BSDs.
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <string>

namespace logcaster {

class WriteQueue;

// Most queue chunks one sendmsg (or one io_uring SENDMSG) carries.
constexpr int kMaxSendIov = 64;

// Address families as JS sees them (remoteAddress, datagram senders).
enum AddressFamilyCode : int { kFamilyUnix = 1, kFamilyIPv4 = 4, kFamilyIPv6 = 6 };

// A non-blocking, close-on-exec socket (no SIGPIPE where SO_NOSIGPIPE exists); fd or -errno.
int NewSocket(int family, int type);
// Parse an IPv4/IPv6 literal; returns AF_INET/AF_INET6, or 0 if it is neither.
int ParseAddress(const std::string& ip, int port, ::sockaddr_storage* ss, unsigned* len);
// Bound, listening, non-blocking socket. Returns fd or -errno; *bound_port gets the
// real port (for port 0). backlog <= 0 means "the system maximum".
int ListenSocket(const std::string& host, int port, int backlog, bool ipv6_only, int* bound_port, std::string* err);
// Non-blocking connect started; returns fd or -errno. *in_progress when EINPROGRESS.
int ConnectSocket(const std::string& ip, int port, bool* in_progress, std::string* err);
// accept one connection as a non-blocking, close-on-exec fd; fd or -errno.
int AcceptSocket(int listen_fd);
void SetNoDelay(int fd);
int SocketError(int fd);  // SO_ERROR
int PeerAddress(int fd, std::string* ip, int* port, int* family);
// Text, port and AddressFamilyCode of a socket address (an unnamed Unix socket: "").
int AddressText(const sockaddr* sa, socklen_t len, std::string* text, int* port, int* family);
int SetNonBlocking(int fd);
// One non-blocking send of len bytes: bytes taken (0 when the socket is full) or -errno.
// Never raises SIGPIPE.
long SendSome(int fd, const char* data, size_t len);
// The same for the head of a write queue, as one sendmsg of up to kMaxSendIov chunks.
long SendQueued(int fd, const WriteQueue& wq);

}  // namespace logcaster
