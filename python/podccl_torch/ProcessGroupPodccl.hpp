// podccl's c10d backend for PyTorch 1.13 (CPU tensors): torch.distributed on podccl.
//
// ProcessGroupPodccl is a c10d::ProcessGroup: one podccl communicator per process group, created
// from a unique id that group rank 0 puts into the c10d store it is given (the others get it), so
// every launcher torch supports works unchanged. Each process group owns one worker thread (its
// "stream": operations run in the order they were issued, one at a time, on that thread, never
// holding the GIL); every call returns a Work at once, completed by the worker. Same shape as
// c10d's ProcessGroupGloo and ProcessGroupMPI (a queue and worker thread per group).
//
// Errors: arguments that cannot work (non-CPU or non-contiguous tensors, a size that does not
// match, an op or dtype podccl cannot reduce) throw c10::Error (RuntimeError in Python) from the
// call itself, before anything is queued: the group stays usable. Failures while bytes move
// (a dead or silent peer, calls that do not match across ranks) complete the Work with a
// RuntimeError carrying podcclGetLastError's text, which names the rank; the communicator is then
// broken and every later call's Work fails with the same message.
//
// Thread-safety: every method may be called from any thread (c10d calls them from Python threads
// and from DDP's autograd hooks); the queue is locked, and only the worker touches the
// communicator.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <podccl.h>

namespace podccl_torch {

class ProcessGroupPodccl;

// A Work's way back to its group that does not keep the group alive: the group's destructor
// clears pg (under mutex) before anything else.
struct GroupLink {
    std::mutex mutex;
    ProcessGroupPodccl *pg = nullptr;
    void flush();                     // ProcessGroupPodccl::flushP2P
    void runInline(const void *work); // ProcessGroupPodccl::runInline
};

// A Work completed by the group's worker thread. wait() blocks until then and rethrows the
// operation's error; getFuture() is completed (with the output tensors, or the error) at the same
// time, before wait() returns, so DDP's communication hooks can chain on it. wait(),
// isCompleted() and getFuture() first release the group's held point-to-point calls; wait() on a
// Work that the worker has not started runs it (and what is queued before it) on the waiting
// thread, saving two thread hand-offs per blocking call.
class WorkPodccl : public c10d::Work {
  public:
    WorkPodccl(int rank, c10d::OpType opType, const char *profilingTitle,
               std::vector<at::Tensor> outputs, std::shared_ptr<GroupLink> link);
    std::vector<at::Tensor> result() override;
    c10::intrusive_ptr<c10::ivalue::Future> getFuture() override;
    bool wait(std::chrono::milliseconds timeout = kNoTimeout) override;
    bool isCompleted() override;
    // Called by the worker: marks the future and the Work completed (error: exception != null).
    void complete(std::exception_ptr exception);

  private:
    void flush();
    std::vector<at::Tensor> outputs_;
    c10::intrusive_ptr<c10::ivalue::Future> future_;
    std::shared_ptr<GroupLink> link_;
};

class ProcessGroupPodccl : public c10d::ProcessGroup {
  public:
    // Collective over the group: rank 0 creates a unique id and sets it under key "podccl_uid"
    // of store; every rank gets it and joins (podcclCommInitRankConfig). timeoutSec (> 0, rounded
    // up to whole seconds, at most 2^31-1) becomes the communicator's timeout: a silent peer is an
    // error after it. name labels podccl's log lines. Throws c10::Error with podccl's message if
    // the rendezvous fails (a missing or dead rank, the store's own timeout).
    ProcessGroupPodccl(const c10::intrusive_ptr<c10d::Store> &store, int rank, int size,
                       double timeoutSec, const std::string &name);
    ~ProcessGroupPodccl() override;

    const std::string getBackendName() const override { return "podccl"; }

    // The collectives: c10d's contract (ProcessGroup.hpp) with one tensor per process (CPU).
    // Each returns a Work at once and throws c10::Error, before queuing anything, on tensors that
    // are not dense, contiguous CPU tensors, on sizes or dtypes that do not match (a list must
    // hold one tensor per rank, each of the input's dtype and element count; a base variant's
    // buffer is nranks times the other), on a root or peer outside the group, and on an op or
    // dtype podccl cannot reduce (reduction() in the .cpp). Sizes are in elements of the
    // tensor's dtype; data-movement collectives move tensor.nbytes() bytes as podcclUint8.
    // Algorithms are podccl's (include/podccl.h): allreduce(_coalesced) -> podcclAllReduce,
    // reduce -> podcclReduce, broadcast -> podcclBroadcast, allgather(_base, _coalesced) ->
    // podcclAllGather, reduce_scatter(_base) -> podcclReduceScatter, alltoall_base ->
    // podcclAllToAll (equal splits) or podcclAllToAllv, alltoall (lists), gather and scatter ->
    // one podccl group of sends and receives (MPI's linear algorithms), barrier ->
    // podcclBarrier. Staging buffers: the list forms of allgather and reduce_scatter and the
    // coalesced forms pack into one temporary of the whole size (nranks x input bytes).

    c10::intrusive_ptr<c10d::Work>
    broadcast(std::vector<at::Tensor> &tensors,
              const c10d::BroadcastOptions &opts = c10d::BroadcastOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    allreduce(std::vector<at::Tensor> &tensors,
              const c10d::AllreduceOptions &opts = c10d::AllreduceOptions()) override;
    c10::intrusive_ptr<c10d::Work> allreduce_coalesced(
        std::vector<at::Tensor> &tensors,
        const c10d::AllreduceCoalescedOptions &opts = c10d::AllreduceCoalescedOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    reduce(std::vector<at::Tensor> &tensors,
           const c10d::ReduceOptions &opts = c10d::ReduceOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    allgather(std::vector<std::vector<at::Tensor>> &outputTensors,
              std::vector<at::Tensor> &inputTensors,
              const c10d::AllgatherOptions &opts = c10d::AllgatherOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    _allgather_base(at::Tensor &outputBuffer, at::Tensor &inputBuffer,
                    const c10d::AllgatherOptions &opts = c10d::AllgatherOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    allgather_coalesced(std::vector<std::vector<at::Tensor>> &outputTensorLists,
                        std::vector<at::Tensor> &inputTensors,
                        const c10d::AllgatherOptions &opts = c10d::AllgatherOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    gather(std::vector<std::vector<at::Tensor>> &outputTensors,
           std::vector<at::Tensor> &inputTensors,
           const c10d::GatherOptions &opts = c10d::GatherOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    scatter(std::vector<at::Tensor> &outputTensors,
            std::vector<std::vector<at::Tensor>> &inputTensors,
            const c10d::ScatterOptions &opts = c10d::ScatterOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    reduce_scatter(std::vector<at::Tensor> &outputTensors,
                   std::vector<std::vector<at::Tensor>> &inputTensors,
                   const c10d::ReduceScatterOptions &opts = c10d::ReduceScatterOptions()) override;
    c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(
        at::Tensor &outputBuffer, at::Tensor &inputBuffer,
        const c10d::ReduceScatterOptions &opts = c10d::ReduceScatterOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    alltoall_base(at::Tensor &outputBuffer, at::Tensor &inputBuffer,
                  std::vector<int64_t> &outputSplitSizes, std::vector<int64_t> &inputSplitSizes,
                  const c10d::AllToAllOptions &opts = c10d::AllToAllOptions()) override;
    c10::intrusive_ptr<c10d::Work>
    alltoall(std::vector<at::Tensor> &outputTensors, std::vector<at::Tensor> &inputTensors,
             const c10d::AllToAllOptions &opts = c10d::AllToAllOptions()) override;
    c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor> &tensors, int dstRank,
                                        int tag) override;
    c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor> &tensors, int srcRank,
                                        int tag) override;
    c10::intrusive_ptr<c10d::Work>
    barrier(const c10d::BarrierOptions &opts = c10d::BarrierOptions()) override;

    // Point to point (send, recv) is held, not run, until something needs it: a wait(),
    // isCompleted() or getFuture() on any held Work, a collective issued after it, the end of a
    // batch_isend_irecv (endCoalescing), or the group's destruction. Then every held call runs in
    // one podccl group (podcclGroupStart/End), in issue order, so exchanges posted in any order
    // (receives first, stars, rings) complete, as they do on Gloo.
    void flushP2P();
    // Runs queued operations on the calling thread, up to and including work's, when the worker
    // is idle and work is still queued; else returns at once (the worker has it).
    void runInline(const void *work);
    void startCoalescing() override;
    void endCoalescing(std::vector<c10::intrusive_ptr<c10d::Work>> &reqs) override;

    void setSequenceNumberForGroup() override;
    uint64_t getSequenceNumberForGroup() override;

    // The communicator's transport and topology summary (podcclCommTransportInfo).
    std::string transportInfo();

  private:
    // One queued operation: fn runs on the worker with the communicator; a nonzero result
    // completes work with podccl's message. p2p operations queued back to back run in one
    // podccl group.
    struct Entry {
        c10::intrusive_ptr<WorkPodccl> work;
        std::function<podcclResult_t(podcclComm_t)> fn;
        std::function<void()> after; // copies out of staging buffers, on success only
        bool p2p = false;
        std::string what; // the call, for error messages
        std::chrono::steady_clock::time_point queued = std::chrono::steady_clock::now();
    };

    c10::intrusive_ptr<c10d::Work> enqueue(c10d::OpType type, const char *title,
                                           std::vector<at::Tensor> outputs, std::string what,
                                           std::function<podcclResult_t(podcclComm_t)> fn,
                                           std::function<void()> after = nullptr, bool p2p = false);
    void runLoop();
    void takeBatch(std::vector<Entry> &batch); // with mutex_ held, queue_ not empty
    void runBatch(std::vector<Entry> &batch);
    void finishBatch(std::vector<Entry> &batch, podcclResult_t rc);

    podcclComm_t comm_ = nullptr;
    std::string name_;
    std::string info_; // podcclCommTransportInfo, read once at init
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Entry> queue_;
    std::vector<Entry> held_; // point-to-point calls not yet released (flushP2P)
    std::shared_ptr<GroupLink> link_ = std::make_shared<GroupLink>();
    bool running_ = false; // a thread (worker or runInline) is running a batch
    bool coalescing_ = false;
    bool stop_ = false;
    uint64_t seq_ = 0;
    std::thread worker_;
};

} // namespace podccl_torch
