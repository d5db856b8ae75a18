// IoDriver for readiness mechanisms: when the Poller says an fd is ready, do the
// accept4/recv/sendmsg (recvmmsg/sendmmsg for datagram sockets) here, once for every
// readiness backend.
#pragma once
#include <memory>
#include <vector>

#include "datagram_sockets.h"
#include "io_driver.h"
#include "poller.h"

namespace logcaster {

class ReadinessDriver final : public IoDriver {
 public:
  explicit ReadinessDriver(std::unique_ptr<Poller> poller) : poller_(std::move(poller)) {}

  int Init(DriverHost* host, std::string* err) override;
  int WatchFd() const override { return poller_->ReadyFd(); }
  void WaitOnThread() override;
  void Wake() override { poller_->Wake(); }
  bool Harvest(int timeout_ms) override;

  int AddListener(Listener* l) override;
  void PauseAccept(Listener* l) override;
  void ResumeAccept(Listener* l) override;
  void RemoveListener(Listener* l) override;

  int AddConn(Conn* c) override;
  void UpdateReading(Conn* c) override;
  long TrySendDirect(Conn* c, const char* data, size_t len) override;
  void Flush(Conn* c, bool socket_full) override;
  void CloseConn(Conn* c) override;

 private:
  // What the poller knows of a connection, by SlotOf(id); reset by AddConn.
  struct Watch {
    uint32_t interest = 0;      // what the poller currently watches
    bool registered = false;    // Add succeeded (false: the poller refused the fd)
    bool read_pending = false;  // input left unread (edge-triggered, or datagrams received
                                // the batch had no room for), listed in read_pending_
    std::unique_ptr<DatagramReceiver> rx;  // datagram sockets: the recvmmsg batch
  };
  Watch& WatchOf(const Conn* c) { return watch_[SlotOf(c->id)]; }
  // Edge-triggered: the connection still has unread input no edge will report again.
  void ListReadPending(Conn* c);
  void ListAcceptPending(Listener* l);
  uint32_t WantedInterest(const Conn* c) const;
  void SetInterest(Conn* c, uint32_t interest);
  void AcceptReady(Listener* l);
  void ReadReady(Conn* c, uint32_t events);
  void ReadDatagrams(Conn* c);
  void FlushDatagrams(Conn* c, bool socket_full);
  void Dispatch(const PollEvent& ev);

  std::unique_ptr<Poller> poller_;
  DriverHost* host_ = nullptr;
  bool edge_ = false;
  std::vector<Watch> watch_;              // by connection slot
  std::vector<uint8_t> accept_listed_;    // by listener id: listed in accept_pending_
  std::vector<PollEvent> ready_;   // reported by the kernel, not processed yet
  size_t ready_pos_ = 0;
  std::vector<int32_t> read_pending_;    // edge-triggered conns with unread input
  std::vector<int32_t> accept_pending_;  // edge-triggered listeners with queued connections
  std::vector<int32_t> read_work_, accept_work_;  // their swap partners while walked
};

}  // namespace logcaster
