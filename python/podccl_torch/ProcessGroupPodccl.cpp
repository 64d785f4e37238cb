// podccl's c10d backend: the process group, its worker thread and the collectives.
// See ProcessGroupPodccl.hpp for the contract and docs/pytorch.md for what users see.
#include "ProcessGroupPodccl.hpp"

#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace podccl_torch {

namespace {

// How long the worker leaves a just-queued operation to a caller about to wait() on it.
constexpr std::chrono::microseconds kInlineGrace(50);

const char *opName(c10d::ReduceOp::RedOpType op) {
    switch (op) {
    case c10d::ReduceOp::SUM:
        return "SUM";
    case c10d::ReduceOp::AVG:
        return "AVG";
    case c10d::ReduceOp::PRODUCT:
        return "PRODUCT";
    case c10d::ReduceOp::MIN:
        return "MIN";
    case c10d::ReduceOp::MAX:
        return "MAX";
    case c10d::ReduceOp::BAND:
        return "BAND";
    case c10d::ReduceOp::BOR:
        return "BOR";
    case c10d::ReduceOp::BXOR:
        return "BXOR";
    case c10d::ReduceOp::PREMUL_SUM:
        return "PREMUL_SUM";
    default:
        return "UNKNOWN";
    }
}

// The dtype as Python spells it (torch.float32), for messages.
std::string dtypeName(at::ScalarType s) {
    switch (s) {
    case at::kFloat:
        return "torch.float32";
    case at::kDouble:
        return "torch.float64";
    case at::kHalf:
        return "torch.float16";
    case at::kBFloat16:
        return "torch.bfloat16";
    case at::kChar:
        return "torch.int8";
    case at::kByte:
        return "torch.uint8";
    case at::kShort:
        return "torch.int16";
    case at::kInt:
        return "torch.int32";
    case at::kLong:
        return "torch.int64";
    case at::kBool:
        return "torch.bool";
    case at::kComplexFloat:
        return "torch.complex64";
    case at::kComplexDouble:
        return "torch.complex128";
    case at::kComplexHalf:
        return "torch.complex32";
    default:
        return std::string("torch.") + c10::toString(s);
    }
}

// A tensor podccl can read and write in place: dense, contiguous, in host memory.
void checkTensor(const at::Tensor &t, const char *coll, const char *what) {
    TORCH_CHECK(t.defined(), "podccl ", coll, ": ", what, " is an undefined tensor");
    TORCH_CHECK(t.device().is_cpu(), "podccl ", coll, ": ", what,
                " must be a CPU tensor (podccl moves host memory), got one on ", t.device());
    TORCH_CHECK(t.layout() == at::kStrided, "podccl ", coll, ": ", what,
                " must be a dense (strided) tensor, got layout ", t.layout());
    TORCH_CHECK(t.is_contiguous(), "podccl ", coll, ": ", what,
                " must be contiguous (call .contiguous() first); sizes ", t.sizes(), ", strides ",
                t.strides());
}

const at::Tensor &single(std::vector<at::Tensor> &v, const char *coll) {
    TORCH_CHECK(v.size() == 1, "podccl ", coll,
                ": takes exactly one tensor per process (CPU tensors), got ", v.size());
    checkTensor(v[0], coll, "tensor");
    return v[0];
}

// A reduction as podccl runs it: datatype, op, element count, and a pre-multiplier.
struct Reduction {
    podcclDataType_t type = podcclFloat32;
    podcclRedOp_t op = podcclSum;
    size_t count = 0;
    bool premul = false;
    double factor = 1.0;
    at::Tensor factorTensor; // PREMUL_SUM with a tensor factor
};

bool plainType(at::ScalarType s, podcclDataType_t *out) {
    switch (s) {
    case at::kFloat:
        *out = podcclFloat32;
        return true;
    case at::kDouble:
        *out = podcclFloat64;
        return true;
    case at::kHalf:
        *out = podcclFloat16;
        return true;
    case at::kBFloat16:
        *out = podcclBfloat16;
        return true;
    case at::kChar:
        *out = podcclInt8;
        return true;
    case at::kByte:
        *out = podcclUint8;
        return true;
    case at::kInt:
        *out = podcclInt32;
        return true;
    case at::kLong:
        *out = podcclInt64;
        return true;
    default:
        return false;
    }
}

// How podccl reduces tensor t with op; throws (before anything is queued) when it cannot.
Reduction reduction(const at::Tensor &t, const c10d::ReduceOp &rop, const char *coll) {
    const c10d::ReduceOp::RedOpType op = rop.op_;
    const at::ScalarType s = t.scalar_type();
    Reduction r;
    r.count = static_cast<size_t>(t.numel());
    switch (op) {
    case c10d::ReduceOp::SUM:
        r.op = podcclSum;
        break;
    case c10d::ReduceOp::AVG:
        r.op = podcclAvg;
        break;
    case c10d::ReduceOp::PRODUCT:
        r.op = podcclProd;
        break;
    case c10d::ReduceOp::MIN:
        r.op = podcclMin;
        break;
    case c10d::ReduceOp::MAX:
        r.op = podcclMax;
        break;
    case c10d::ReduceOp::PREMUL_SUM: {
        r.op = podcclSum;
        r.premul = true;
        auto *sup = dynamic_cast<c10d::NCCLPreMulSumSupplement *>(rop.supplement_.get());
        TORCH_CHECK(sup != nullptr, "podccl ", coll, ": PREMUL_SUM without its factor");
        if (!sup->tensor_factors.empty()) {
            TORCH_CHECK(sup->tensor_factors.size() == 1, "podccl ", coll,
                        ": PREMUL_SUM needs one factor tensor per tensor (one), got ",
                        sup->tensor_factors.size());
            r.factorTensor = sup->tensor_factors[0].to(at::kCPU);
        } else {
            r.factor = sup->double_factor;
        }
        TORCH_CHECK(at::isFloatingType(s) || at::isComplexType(s), "podccl ", coll,
                    ": PREMUL_SUM needs a floating-point tensor, got ", dtypeName(s));
        break;
    }
    default:
        TORCH_CHECK(false, "podccl ", coll, ": reduce op ", opName(op), " (on dtype ", dtypeName(s),
                    ") is not supported: podccl reduces with SUM, PRODUCT, MIN, MAX, AVG and "
                    "PREMUL_SUM, and has no bitwise reductions");
    }
    if (plainType(s, &r.type)) return r;
    if (s == at::kBool && (op == c10d::ReduceOp::MIN || op == c10d::ReduceOp::MAX)) {
        r.type = podcclUint8; // logical and / or on 0 and 1
        return r;
    }
    const bool linear =
        op == c10d::ReduceOp::SUM || op == c10d::ReduceOp::AVG || op == c10d::ReduceOp::PREMUL_SUM;
    if ((s == at::kComplexFloat || s == at::kComplexDouble) && linear) {
        r.type = s == at::kComplexFloat ? podcclFloat32 : podcclFloat64;
        r.count *= 2; // real and imaginary parts are summed independently
        return r;
    }
    TORCH_CHECK(false, "podccl ", coll, ": cannot reduce dtype ", dtypeName(s), " with op ",
                opName(op),
                ": podccl reduces float32, float64, float16, bfloat16, int8, uint8, int32 and "
                "int64 (bool only with MIN/MAX, complex only with SUM/AVG/PREMUL_SUM)");
    return r;
}

// Multiplies t by the PREMUL_SUM factor (on the worker, in order with the group's other work).
void premultiply(at::Tensor &t, const Reduction &r) {
    if (!r.premul) return;
    if (r.factorTensor.defined())
        t.mul_(r.factorTensor);
    else
        t.mul_(r.factor);
}

// The send buffer of a reduction whose input must stay as it was: t itself, or for PREMUL_SUM a
// scaled copy.
at::Tensor premultiplied(const at::Tensor &t, const Reduction &r) {
    if (!r.premul) return t;
    at::Tensor copy = t.clone();
    premultiply(copy, r);
    return copy;
}

void checkSameShape(const at::Tensor &a, const at::Tensor &ref, const char *coll,
                    const char *what) {
    TORCH_CHECK(a.scalar_type() == ref.scalar_type(), "podccl ", coll, ": ", what, " has dtype ",
                dtypeName(a.scalar_type()), " but the input has ", dtypeName(ref.scalar_type()));
    TORCH_CHECK(a.numel() == ref.numel(), "podccl ", coll, ": ", what, " has ", a.numel(),
                " elements but the input has ", ref.numel());
}

void checkRank(int64_t r, int size, const char *coll, const char *what) {
    TORCH_CHECK(r >= 0 && r < size, "podccl ", coll, ": ", what, " ", r,
                " is not a rank of this group (size ", size, ")");
}

size_t nbytes(const at::Tensor &t) {
    return static_cast<size_t>(t.nbytes());
}

// Runs body between podcclGroupStart and podcclGroupEnd; returns the first error.
podcclResult_t inGroup(const std::function<podcclResult_t()> &body) {
    podcclResult_t r = podcclGroupStart();
    if (r != podcclSuccess) return r;
    podcclResult_t b = body();
    podcclResult_t e = podcclGroupEnd();
    return b != podcclSuccess ? b : e;
}

// A flat staging tensor of n blocks shaped like ref, and a copy into it / out of it.
at::Tensor flatBlocks(const at::Tensor &ref, int64_t n) {
    return at::empty({n * ref.numel()}, ref.options());
}

} // namespace

// ---- Work -------------------------------------------------------------------------------------

void GroupLink::flush() {
    std::lock_guard<std::mutex> lock(mutex);
    if (pg != nullptr) pg->flushP2P();
}

void GroupLink::runInline(const void *work) {
    std::lock_guard<std::mutex> lock(mutex); // the group is not destroyed while we run
    if (pg != nullptr) pg->runInline(work);
}

WorkPodccl::WorkPodccl(int rank, c10d::OpType opType, const char *profilingTitle,
                       std::vector<at::Tensor> outputs, std::shared_ptr<GroupLink> link)
    : c10d::Work(rank, opType, profilingTitle), outputs_(std::move(outputs)),
      future_(
          c10::make_intrusive<c10::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))),
      link_(std::move(link)) {}

void WorkPodccl::flush() {
    if (link_) link_->flush();
}

std::vector<at::Tensor> WorkPodccl::result() {
    return outputs_;
}

c10::intrusive_ptr<c10::ivalue::Future> WorkPodccl::getFuture() {
    flush(); // whoever takes the future will wait on it
    return future_;
}

bool WorkPodccl::wait(std::chrono::milliseconds timeout) {
    flush();
    if (link_) link_->runInline(this);
    return c10d::Work::wait(timeout);
}

bool WorkPodccl::isCompleted() {
    flush();
    return c10d::Work::isCompleted();
}

void WorkPodccl::complete(std::exception_ptr exception) {
    if (exception)
        future_->setError(exception);
    else
        future_->markCompleted(c10::IValue(outputs_));
    finish(exception);
}

// ---- Construction, the worker -----------------------------------------------------------------

ProcessGroupPodccl::ProcessGroupPodccl(const c10::intrusive_ptr<c10d::Store> &store, int rank,
                                       int size, double timeoutSec, const std::string &name)
    : c10d::ProcessGroup(rank, size), name_(name.empty() ? "torch" : "torch:" + name) {
    TORCH_CHECK(size > 0 && rank >= 0 && rank < size, "podccl: rank ", rank,
                " is not in a group of size ", size);
    TORCH_CHECK(std::isfinite(timeoutSec) && timeoutSec > 0, "podccl: timeout must be > 0 s, got ",
                timeoutSec);
    podcclUniqueId id;
    const std::string key = "podccl_uid";
    if (rank == 0) {
        podcclResult_t r = podcclGetUniqueId(&id);
        TORCH_CHECK(r == podcclSuccess,
                    "podccl: podcclGetUniqueId failed: ", podcclGetErrorString(r), ": ",
                    podcclGetLastError(nullptr));
        store->set(key, std::vector<uint8_t>(id.internal, id.internal + sizeof(id.internal)));
    } else {
        std::vector<uint8_t> v = store->get(key);
        TORCH_CHECK(v.size() == sizeof(id.internal), "podccl: the unique id in the store (key '",
                    key, "') has ", v.size(), " bytes, expected ", sizeof(id.internal));
        std::memcpy(id.internal, v.data(), sizeof(id.internal));
    }
    podcclConfig_t config = PODCCL_CONFIG_INITIALIZER;
    config.timeoutSec = timeoutSec >= INT_MAX ? INT_MAX : static_cast<int>(std::ceil(timeoutSec));
    config.name = name_.c_str();
    podcclResult_t r = podcclCommInitRankConfig(&comm_, size, id, rank, &config);
    TORCH_CHECK(r == podcclSuccess, "podccl: communicator init of rank ", rank, " of ", size, " (",
                name_, ") failed: ", podcclGetErrorString(r), ": ", podcclGetLastError(nullptr));
    char info[1024] = "";
    if (podcclCommTransportInfo(comm_, info, sizeof(info)) == podcclSuccess) info_ = info;
    init();
    link_->pg = this; // Works reach us through link_ until the destructor cuts it
    worker_ = std::thread(&ProcessGroupPodccl::runLoop, this);
}

ProcessGroupPodccl::~ProcessGroupPodccl() {
    {
        std::lock_guard<std::mutex> lock(link_->mutex); // Works outlive us: cut them off
        link_->pg = nullptr;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        for (auto &e : held_) queue_.push_back(std::move(e)); // never left hanging
        held_.clear();
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (comm_ != nullptr) podcclCommDestroy(comm_);
}

std::string ProcessGroupPodccl::transportInfo() {
    return info_;
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::enqueue(c10d::OpType type, const char *title, std::vector<at::Tensor> outputs,
                            std::string what, std::function<podcclResult_t(podcclComm_t)> fn,
                            std::function<void()> after, bool p2p) {
    auto work = c10::make_intrusive<WorkPodccl>(rank_, type, title, std::move(outputs), link_);
    Entry e{work, std::move(fn), std::move(after), p2p, std::move(what)};
    {
        std::lock_guard<std::mutex> lock(mutex_);
        TORCH_CHECK(!stop_, "podccl: the process group is being destroyed");
        seq_++;
        if (p2p) {
            held_.push_back(std::move(e)); // runs when something needs it (flushP2P)
            return work;
        }
        for (auto &h : held_) queue_.push_back(std::move(h)); // issue order: held p2p first
        held_.clear();
        queue_.push_back(std::move(e));
    }
    cv_.notify_one();
    return work;
}

void ProcessGroupPodccl::takeBatch(std::vector<Entry> &batch) {
    // Point-to-point operations queued back to back run as one podccl group, as NCCL runs a
    // group's sends and receives together.
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    while (batch.front().p2p && !queue_.empty() && queue_.front().p2p) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    running_ = true;
}

void ProcessGroupPodccl::runLoop() {
    for (;;) {
        std::vector<Entry> batch;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [this] { return !running_ && (stop_ || !queue_.empty()); });
            if (queue_.empty()) return; // stop_ and drained
            // A blocking call (dist.all_reduce(t)) is enqueue then wait() at once: leave a fresh
            // operation a moment to the caller's wait(), which runs it itself (runInline) and
            // saves two thread hand-offs (tens of microseconds on a busy machine).
            if (!stop_ && std::chrono::steady_clock::now() - queue_.front().queued < kInlineGrace) {
                lock.unlock();
                std::this_thread::yield();
                continue;
            }
            takeBatch(batch);
        }
        runBatch(batch);
        std::lock_guard<std::mutex> lock(mutex_);
        running_ = false;
    }
}

void ProcessGroupPodccl::runInline(const void *work) {
    for (;;) {
        std::vector<Entry> batch;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (running_) return;
            bool queued = false;
            for (auto &e : queue_) queued = queued || e.work.get() == work;
            if (!queued) return; // done, or being run
            takeBatch(batch);
        }
        runBatch(batch);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            running_ = false;
        }
        cv_.notify_all(); // the worker may be waiting for running_ to clear
    }
}

void ProcessGroupPodccl::runBatch(std::vector<Entry> &batch) {
    podcclResult_t rc = podcclSuccess;
    try {
        if (batch.size() == 1) {
            rc = batch[0].fn(comm_);
        } else {
            rc = inGroup([&]() {
                for (auto &e : batch) {
                    podcclResult_t r = e.fn(comm_);
                    if (r != podcclSuccess) return r;
                }
                return podcclSuccess;
            });
        }
    } catch (...) {
        std::exception_ptr ex = std::current_exception();
        for (auto &e : batch) e.work->complete(ex);
        return;
    }
    finishBatch(batch, rc);
}

void ProcessGroupPodccl::finishBatch(std::vector<Entry> &batch, podcclResult_t rc) {
    if (rc != podcclSuccess) {
        const std::string msg =
            std::string("podccl ") + batch[0].what +
            (batch.size() > 1 ? " (and the point-to-point calls run with it)" : "") +
            " failed: " + podcclGetErrorString(rc) + ": " + podcclGetLastError(comm_);
        std::exception_ptr ex = std::make_exception_ptr(std::runtime_error(msg));
        for (auto &e : batch) e.work->complete(ex);
        return;
    }
    for (auto &e : batch) {
        std::exception_ptr ex;
        try {
            if (e.after) e.after();
        } catch (...) {
            ex = std::current_exception();
        }
        e.work->complete(ex);
    }
}

void ProcessGroupPodccl::flushP2P() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (held_.empty()) return;
        // Queued back to back, so the worker runs them as one podccl group.
        for (auto &h : held_) queue_.push_back(std::move(h));
        held_.clear();
    }
    cv_.notify_one();
}

void ProcessGroupPodccl::startCoalescing() {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK(!coalescing_, "podccl: startCoalescing called twice without endCoalescing");
    coalescing_ = true;
}

void ProcessGroupPodccl::endCoalescing(std::vector<c10::intrusive_ptr<c10d::Work>> & /*reqs*/) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        TORCH_CHECK(coalescing_, "podccl: endCoalescing without startCoalescing");
        coalescing_ = false;
    }
    flushP2P(); // batch_isend_irecv: the batch runs as one podccl group
}

void ProcessGroupPodccl::setSequenceNumberForGroup() {
    std::lock_guard<std::mutex> lock(mutex_);
    seq_ = 0;
}

uint64_t ProcessGroupPodccl::getSequenceNumberForGroup() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seq_;
}

// ---- Reductions -------------------------------------------------------------------------------

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::allreduce(std::vector<at::Tensor> &tensors,
                                                             const c10d::AllreduceOptions &opts) {
    at::Tensor t = single(tensors, "allreduce");
    Reduction r = reduction(t, opts.reduceOp, "allreduce");
    return enqueue(c10d::OpType::ALLREDUCE, "podccl:all_reduce", {t},
                   std::string("allreduce (") + opName(opts.reduceOp.op_) + ")",
                   [t, r](podcclComm_t comm) mutable {
                       premultiply(t, r);
                       return podcclAllReduce(t.data_ptr(), t.data_ptr(), r.count, r.type, r.op,
                                              comm, nullptr);
                   });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::allreduce_coalesced(std::vector<at::Tensor> &tensors,
                                        const c10d::AllreduceCoalescedOptions &opts) {
    TORCH_CHECK(!tensors.empty(), "podccl allreduce_coalesced: no tensors");
    for (auto &t : tensors) {
        checkTensor(t, "allreduce_coalesced", "tensor");
        TORCH_CHECK(t.scalar_type() == tensors[0].scalar_type(),
                    "podccl allreduce_coalesced: all tensors must have one dtype, got ",
                    dtypeName(tensors[0].scalar_type()), " and ", dtypeName(t.scalar_type()));
    }
    Reduction r = reduction(tensors[0], opts.reduceOp, "allreduce_coalesced");
    std::vector<at::Tensor> ts = tensors;
    int64_t total = 0;
    for (auto &t : ts) total += t.numel();
    r.count = static_cast<size_t>(total) * (at::isComplexType(ts[0].scalar_type()) ? 2 : 1);
    auto flat = std::make_shared<at::Tensor>();
    return enqueue(
        c10d::OpType::ALLREDUCE_COALESCED, "podccl:all_reduce_coalesced", ts,
        std::string("allreduce_coalesced (") + opName(opts.reduceOp.op_) + ")",
        [ts, r, flat](podcclComm_t comm) mutable {
            std::vector<at::Tensor> views;
            for (auto &t : ts) views.push_back(t.reshape({-1}));
            *flat = at::cat(views);
            premultiply(*flat, r);
            return podcclAllReduce(flat->data_ptr(), flat->data_ptr(), r.count, r.type, r.op, comm,
                                   nullptr);
        },
        [ts, flat]() mutable {
            int64_t off = 0;
            for (auto &t : ts) {
                t.view({-1}).copy_(flat->narrow(0, off, t.numel()));
                off += t.numel();
            }
        });
}

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::reduce(std::vector<at::Tensor> &tensors,
                                                          const c10d::ReduceOptions &opts) {
    at::Tensor t = single(tensors, "reduce");
    checkRank(opts.rootRank, size_, "reduce", "root");
    Reduction r = reduction(t, opts.reduceOp, "reduce");
    const int root = static_cast<int>(opts.rootRank);
    return enqueue(c10d::OpType::REDUCE, "podccl:reduce", {t},
                   std::string("reduce (") + opName(opts.reduceOp.op_) + ", root " +
                       std::to_string(root) + ")",
                   [t, r, root](podcclComm_t comm) mutable {
                       // the input of a non-root rank is left as it was
                       at::Tensor src = premultiplied(t, r);
                       return podcclReduce(src.data_ptr(), t.data_ptr(), r.count, r.type, r.op,
                                           root, comm, nullptr);
                   });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::reduce_scatter(std::vector<at::Tensor> &outputTensors,
                                   std::vector<std::vector<at::Tensor>> &inputTensors,
                                   const c10d::ReduceScatterOptions &opts) {
    at::Tensor out = single(outputTensors, "reduce_scatter");
    TORCH_CHECK(inputTensors.size() == 1, "podccl reduce_scatter: one input list per process");
    std::vector<at::Tensor> ins = inputTensors[0];
    TORCH_CHECK(static_cast<int>(ins.size()) == size_, "podccl reduce_scatter: the input list has ",
                ins.size(), " tensors, the group has ", size_, " ranks");
    for (auto &t : ins) {
        checkTensor(t, "reduce_scatter", "input");
        checkSameShape(t, out, "reduce_scatter", "an input");
    }
    Reduction r = reduction(out, opts.reduceOp, "reduce_scatter");
    return enqueue(c10d::OpType::REDUCE_SCATTER, "podccl:reduce_scatter", {out},
                   std::string("reduce_scatter (") + opName(opts.reduceOp.op_) + ")",
                   [out, ins, r](podcclComm_t comm) mutable {
                       std::vector<at::Tensor> views;
                       for (auto &t : ins) views.push_back(t.reshape({-1}));
                       at::Tensor flat = at::cat(views);
                       premultiply(flat, r);
                       return podcclReduceScatter(flat.data_ptr(), out.data_ptr(), r.count, r.type,
                                                  r.op, comm, nullptr);
                   });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::_reduce_scatter_base(at::Tensor &outputBuffer, at::Tensor &inputBuffer,
                                         const c10d::ReduceScatterOptions &opts) {
    checkTensor(outputBuffer, "_reduce_scatter_base", "output");
    checkTensor(inputBuffer, "_reduce_scatter_base", "input");
    TORCH_CHECK(inputBuffer.scalar_type() == outputBuffer.scalar_type(),
                "podccl _reduce_scatter_base: input dtype ", dtypeName(inputBuffer.scalar_type()),
                " differs from output dtype ", dtypeName(outputBuffer.scalar_type()));
    TORCH_CHECK(inputBuffer.numel() == outputBuffer.numel() * size_,
                "podccl _reduce_scatter_base: input has ", inputBuffer.numel(),
                " elements, expected output's ", outputBuffer.numel(), " x ", size_, " ranks");
    Reduction r = reduction(outputBuffer, opts.reduceOp, "_reduce_scatter_base");
    at::Tensor out = outputBuffer, in = inputBuffer;
    return enqueue(c10d::OpType::_REDUCE_SCATTER_BASE, "podccl:_reduce_scatter_base", {out},
                   std::string("_reduce_scatter_base (") + opName(opts.reduceOp.op_) + ")",
                   [out, in, r](podcclComm_t comm) mutable {
                       at::Tensor src = premultiplied(in, r);
                       return podcclReduceScatter(src.data_ptr(), out.data_ptr(), r.count, r.type,
                                                  r.op, comm, nullptr);
                   });
}

// ---- Data movement: any dtype, as bytes ---------------------------------------------------------

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::broadcast(std::vector<at::Tensor> &tensors,
                                                             const c10d::BroadcastOptions &opts) {
    at::Tensor t = single(tensors, "broadcast");
    checkRank(opts.rootRank, size_, "broadcast", "root");
    const int root = static_cast<int>(opts.rootRank);
    return enqueue(c10d::OpType::BROADCAST, "podccl:broadcast", {t},
                   "broadcast (root " + std::to_string(root) + ")", [t, root](podcclComm_t comm) {
                       return podcclBroadcast(t.data_ptr(), t.data_ptr(), nbytes(t), podcclUint8,
                                              root, comm, nullptr);
                   });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::allgather(std::vector<std::vector<at::Tensor>> &outputTensors,
                              std::vector<at::Tensor> &inputTensors,
                              const c10d::AllgatherOptions & /*opts*/) {
    at::Tensor in = single(inputTensors, "allgather");
    TORCH_CHECK(outputTensors.size() == 1, "podccl allgather: one output list per process");
    std::vector<at::Tensor> outs = outputTensors[0];
    TORCH_CHECK(static_cast<int>(outs.size()) == size_, "podccl allgather: the output list has ",
                outs.size(), " tensors, the group has ", size_, " ranks");
    for (auto &t : outs) {
        checkTensor(t, "allgather", "output");
        checkSameShape(t, in, "allgather", "an output");
    }
    auto flat = std::make_shared<at::Tensor>(flatBlocks(in, size_));
    return enqueue(
        c10d::OpType::ALLGATHER, "podccl:all_gather", outs, "allgather",
        [in, flat](podcclComm_t comm) {
            return podcclAllGather(in.data_ptr(), flat->data_ptr(), nbytes(in), podcclUint8, comm,
                                   nullptr);
        },
        [outs, flat]() mutable {
            const int64_t n = outs.empty() ? 0 : outs[0].numel();
            for (size_t i = 0; i < outs.size(); i++)
                outs[i].view({-1}).copy_(flat->narrow(0, static_cast<int64_t>(i) * n, n));
        });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::_allgather_base(at::Tensor &outputBuffer, at::Tensor &inputBuffer,
                                    const c10d::AllgatherOptions & /*opts*/) {
    checkTensor(outputBuffer, "_allgather_base", "output");
    checkTensor(inputBuffer, "_allgather_base", "input");
    TORCH_CHECK(inputBuffer.scalar_type() == outputBuffer.scalar_type(),
                "podccl _allgather_base: input dtype ", dtypeName(inputBuffer.scalar_type()),
                " differs from output dtype ", dtypeName(outputBuffer.scalar_type()));
    TORCH_CHECK(outputBuffer.numel() == inputBuffer.numel() * size_,
                "podccl _allgather_base: output has ", outputBuffer.numel(),
                " elements, expected input's ", inputBuffer.numel(), " x ", size_, " ranks");
    at::Tensor out = outputBuffer, in = inputBuffer;
    return enqueue(c10d::OpType::_ALLGATHER_BASE, "podccl:_all_gather_base", {out},
                   "_allgather_base", [out, in](podcclComm_t comm) {
                       return podcclAllGather(in.data_ptr(), out.data_ptr(), nbytes(in),
                                              podcclUint8, comm, nullptr);
                   });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::allgather_coalesced(std::vector<std::vector<at::Tensor>> &outputTensorLists,
                                        std::vector<at::Tensor> &inputTensors,
                                        const c10d::AllgatherOptions & /*opts*/) {
    TORCH_CHECK(static_cast<int>(outputTensorLists.size()) == size_,
                "podccl allgather_coalesced: ", outputTensorLists.size(),
                " output lists, the group has ", size_, " ranks");
    std::vector<at::Tensor> ins = inputTensors;
    int64_t bytes = 0;
    for (auto &t : ins) {
        checkTensor(t, "allgather_coalesced", "input");
        bytes += t.nbytes();
    }
    std::vector<std::vector<at::Tensor>> outs = outputTensorLists;
    for (auto &list : outs) {
        TORCH_CHECK(list.size() == ins.size(), "podccl allgather_coalesced: an output list has ",
                    list.size(), " tensors, the input list ", ins.size());
        for (size_t j = 0; j < list.size(); j++) {
            checkTensor(list[j], "allgather_coalesced", "output");
            checkSameShape(list[j], ins[j], "allgather_coalesced", "an output");
        }
    }
    auto flat = std::make_shared<at::Tensor>(at::empty({bytes * size_}, at::kByte));
    std::vector<at::Tensor> all;
    for (auto &list : outs) all.insert(all.end(), list.begin(), list.end());
    return enqueue(
        c10d::OpType::ALLGATHER_COALESCED, "podccl:all_gather_coalesced", all,
        "allgather_coalesced",
        [ins, flat, bytes](podcclComm_t comm) {
            at::Tensor send = at::empty({bytes}, at::kByte);
            int64_t off = 0;
            for (auto &t : ins) {
                const int64_t nb = static_cast<int64_t>(t.nbytes());
                if (nb > 0) std::memcpy(send.data_ptr<uint8_t>() + off, t.data_ptr(), nb);
                off += nb;
            }
            return podcclAllGather(send.data_ptr(), flat->data_ptr(), static_cast<size_t>(bytes),
                                   podcclUint8, comm, nullptr);
        },
        [outs, flat, bytes]() mutable {
            for (size_t r = 0; r < outs.size(); r++) {
                const uint8_t *src = flat->data_ptr<uint8_t>() + static_cast<int64_t>(r) * bytes;
                for (auto &t : outs[r]) {
                    if (t.nbytes() > 0) std::memcpy(t.data_ptr(), src, t.nbytes());
                    src += t.nbytes();
                }
            }
        });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::gather(std::vector<std::vector<at::Tensor>> &outputTensors,
                           std::vector<at::Tensor> &inputTensors, const c10d::GatherOptions &opts) {
    at::Tensor in = single(inputTensors, "gather");
    checkRank(opts.rootRank, size_, "gather", "root");
    const int root = static_cast<int>(opts.rootRank), me = rank_;
    std::vector<at::Tensor> outs;
    if (me == root) {
        TORCH_CHECK(outputTensors.size() == 1 && static_cast<int>(outputTensors[0].size()) == size_,
                    "podccl gather: the root needs one output list of ", size_, " tensors");
        outs = outputTensors[0];
        for (auto &t : outs) {
            checkTensor(t, "gather", "output");
            checkSameShape(t, in, "gather", "an output");
        }
    } else {
        TORCH_CHECK(outputTensors.empty() ||
                        (outputTensors.size() == 1 && outputTensors[0].empty()),
                    "podccl gather: only the root (rank ", root, ") takes output tensors");
    }
    // Binomial or linear: the root receives one block from every rank in one group (MPI's
    // linear MPI_Gather; podccl schedules the receives together).
    return enqueue(
        c10d::OpType::GATHER, "podccl:gather", outs, "gather (root " + std::to_string(root) + ")",
        [in, outs, root, me](podcclComm_t comm) mutable {
            return inGroup([&]() {
                if (me != root)
                    return podcclSend(in.data_ptr(), nbytes(in), podcclUint8, root, comm, nullptr);
                for (int p = 0; p < static_cast<int>(outs.size()); p++) {
                    if (p == me) {
                        outs[p].copy_(in.view(outs[p].sizes()));
                        continue;
                    }
                    podcclResult_t r = podcclRecv(outs[p].data_ptr(), nbytes(outs[p]), podcclUint8,
                                                  p, comm, nullptr);
                    if (r != podcclSuccess) return r;
                }
                return podcclSuccess;
            });
        });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::scatter(std::vector<at::Tensor> &outputTensors,
                            std::vector<std::vector<at::Tensor>> &inputTensors,
                            const c10d::ScatterOptions &opts) {
    at::Tensor out = single(outputTensors, "scatter");
    checkRank(opts.rootRank, size_, "scatter", "root");
    const int root = static_cast<int>(opts.rootRank), me = rank_;
    std::vector<at::Tensor> ins;
    if (me == root) {
        TORCH_CHECK(inputTensors.size() == 1 && static_cast<int>(inputTensors[0].size()) == size_,
                    "podccl scatter: the root needs one input list of ", size_, " tensors");
        ins = inputTensors[0];
        for (auto &t : ins) {
            checkTensor(t, "scatter", "input");
            checkSameShape(t, out, "scatter", "an input");
        }
    } else {
        TORCH_CHECK(inputTensors.empty() || (inputTensors.size() == 1 && inputTensors[0].empty()),
                    "podccl scatter: only the root (rank ", root, ") takes input tensors");
    }
    return enqueue(c10d::OpType::SCATTER, "podccl:scatter", {out},
                   "scatter (root " + std::to_string(root) + ")",
                   [out, ins, root, me](podcclComm_t comm) mutable {
                       return inGroup([&]() {
                           if (me != root)
                               return podcclRecv(out.data_ptr(), nbytes(out), podcclUint8, root,
                                                 comm, nullptr);
                           for (int p = 0; p < static_cast<int>(ins.size()); p++) {
                               if (p == me) {
                                   out.copy_(ins[p].view(out.sizes()));
                                   continue;
                               }
                               podcclResult_t r = podcclSend(ins[p].data_ptr(), nbytes(ins[p]),
                                                             podcclUint8, p, comm, nullptr);
                               if (r != podcclSuccess) return r;
                           }
                           return podcclSuccess;
                       });
                   });
}

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::alltoall_base(
    at::Tensor &outputBuffer, at::Tensor &inputBuffer, std::vector<int64_t> &outputSplitSizes,
    std::vector<int64_t> &inputSplitSizes, const c10d::AllToAllOptions & /*opts*/) {
    checkTensor(outputBuffer, "alltoall_base", "output");
    checkTensor(inputBuffer, "alltoall_base", "input");
    TORCH_CHECK(inputBuffer.scalar_type() == outputBuffer.scalar_type(),
                "podccl alltoall_base: input dtype ", dtypeName(inputBuffer.scalar_type()),
                " differs from output dtype ", dtypeName(outputBuffer.scalar_type()));
    at::Tensor out = outputBuffer, in = inputBuffer;
    if (outputSplitSizes.empty() && inputSplitSizes.empty()) {
        TORCH_CHECK(in.numel() == out.numel() && in.numel() % size_ == 0,
                    "podccl alltoall_base: equal splits need input and output of the same size, "
                    "divisible by ",
                    size_, " ranks; got ", in.numel(), " and ", out.numel(), " elements");
        const size_t block = nbytes(in) / static_cast<size_t>(size_);
        return enqueue(c10d::OpType::ALLTOALL_BASE, "podccl:all_to_all", {out}, "alltoall_base",
                       [out, in, block](podcclComm_t comm) {
                           return podcclAllToAll(in.data_ptr(), out.data_ptr(), block, podcclUint8,
                                                 comm, nullptr);
                       });
    }
    // Uneven splits: sizes along dim 0 (empty = equal), as c10d's computeLengthsAndOffsets.
    auto lengths = [&](const std::vector<int64_t> &split, const at::Tensor &t, const char *what) {
        std::vector<size_t> cnt(size_), dsp(size_);
        const int64_t rows = t.dim() > 0 ? t.size(0) : 1;
        const size_t rowBytes = rows > 0 ? nbytes(t) / static_cast<size_t>(rows) : 0;
        TORCH_CHECK(split.empty() || static_cast<int>(split.size()) == size_,
                    "podccl alltoall: ", what, " split sizes have ", split.size(),
                    " entries, the group has ", size_, " ranks");
        if (split.empty())
            TORCH_CHECK(rows % size_ == 0, "podccl alltoall: ", what, " has ", rows,
                        " rows, not divisible by ", size_, " ranks (give split sizes)");
        int64_t sum = 0;
        size_t off = 0;
        for (int p = 0; p < size_; p++) {
            const int64_t s = split.empty() ? rows / size_ : split[p];
            TORCH_CHECK(s >= 0, "podccl alltoall: negative ", what, " split size ", s);
            sum += s;
            cnt[p] = static_cast<size_t>(s) * rowBytes;
            dsp[p] = off;
            off += cnt[p];
        }
        TORCH_CHECK(sum == rows, "podccl alltoall: ", what, " split sizes add up to ", sum,
                    ", the tensor has ", rows, " rows");
        return std::make_pair(cnt, dsp);
    };
    auto sl = lengths(inputSplitSizes, in, "input");
    auto rl = lengths(outputSplitSizes, out, "output");
    TORCH_CHECK(sl.first[rank_] == rl.first[rank_], "podccl alltoall: this rank sends itself ",
                sl.first[rank_], " bytes but expects to receive ", rl.first[rank_], " from itself");
    const bool overlap = nbytes(in) > 0 && nbytes(out) > 0 &&
                         static_cast<const char *>(in.data_ptr()) <
                             static_cast<const char *>(out.data_ptr()) + nbytes(out) &&
                         static_cast<const char *>(out.data_ptr()) <
                             static_cast<const char *>(in.data_ptr()) + nbytes(in);
    return enqueue(c10d::OpType::ALLTOALL_BASE, "podccl:all_to_all", {out}, "alltoall_base (v)",
                   [out, in, sl, rl, overlap](podcclComm_t comm) {
                       at::Tensor src = overlap ? in.clone() : in; // all-to-all-v is not in place
                       return podcclAllToAllv(src.data_ptr(), sl.first.data(), sl.second.data(),
                                              out.data_ptr(), rl.first.data(), rl.second.data(),
                                              podcclUint8, comm, nullptr);
                   });
}

c10::intrusive_ptr<c10d::Work>
ProcessGroupPodccl::alltoall(std::vector<at::Tensor> &outputTensors,
                             std::vector<at::Tensor> &inputTensors,
                             const c10d::AllToAllOptions & /*opts*/) {
    TORCH_CHECK(static_cast<int>(outputTensors.size()) == size_ &&
                    static_cast<int>(inputTensors.size()) == size_,
                "podccl alltoall: needs ", size_, " input and output tensors, got ",
                inputTensors.size(), " and ", outputTensors.size());
    for (int p = 0; p < size_; p++) {
        checkTensor(inputTensors[p], "alltoall", "input");
        checkTensor(outputTensors[p], "alltoall", "output");
    }
    TORCH_CHECK(inputTensors[rank_].nbytes() == outputTensors[rank_].nbytes(),
                "podccl alltoall: the tensor this rank sends itself has ",
                inputTensors[rank_].nbytes(), " bytes, the one it receives into ",
                outputTensors[rank_].nbytes());
    std::vector<at::Tensor> outs = outputTensors, ins = inputTensors;
    const int me = rank_;
    // Pairwise exchange of one tensor per peer, all in one podccl group.
    return enqueue(c10d::OpType::ALLTOALL, "podccl:all_to_all", outs, "alltoall (lists)",
                   [outs, ins, me](podcclComm_t comm) {
                       return inGroup([&]() {
                           for (int p = 0; p < static_cast<int>(ins.size()); p++) {
                               if (p == me) {
                                   if (ins[p].nbytes() > 0)
                                       std::memmove(outs[p].data_ptr(), ins[p].data_ptr(),
                                                    ins[p].nbytes());
                                   continue;
                               }
                               podcclResult_t r = podcclSend(ins[p].data_ptr(), nbytes(ins[p]),
                                                             podcclUint8, p, comm, nullptr);
                               if (r == podcclSuccess)
                                   r = podcclRecv(outs[p].data_ptr(), nbytes(outs[p]), podcclUint8,
                                                  p, comm, nullptr);
                               if (r != podcclSuccess) return r;
                           }
                           return podcclSuccess;
                       });
                   });
}

// ---- Point to point, barrier --------------------------------------------------------------------

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::send(std::vector<at::Tensor> &tensors,
                                                        int dstRank, int tag) {
    at::Tensor t = single(tensors, "send");
    checkRank(dstRank, size_, "send", "destination");
    TORCH_CHECK(tag == 0, "podccl send: tag ", tag,
                " is not supported: podccl matches sends and receives in order per pair of ranks "
                "(use tag 0)");
    return enqueue(
        c10d::OpType::SEND, "podccl:send", {t}, "send to rank " + std::to_string(dstRank),
        [t, dstRank](podcclComm_t comm) {
            return podcclSend(t.data_ptr(), nbytes(t), podcclUint8, dstRank, comm, nullptr);
        },
        nullptr, true);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::recv(std::vector<at::Tensor> &tensors,
                                                        int srcRank, int tag) {
    at::Tensor t = single(tensors, "recv");
    checkRank(srcRank, size_, "recv", "source");
    TORCH_CHECK(tag == 0, "podccl recv: tag ", tag,
                " is not supported: podccl matches sends and receives in order per pair of ranks "
                "(use tag 0)");
    return enqueue(
        c10d::OpType::RECV, "podccl:recv", {t}, "recv from rank " + std::to_string(srcRank),
        [t, srcRank](podcclComm_t comm) {
            return podcclRecv(t.data_ptr(), nbytes(t), podcclUint8, srcRank, comm, nullptr);
        },
        nullptr, true);
}

c10::intrusive_ptr<c10d::Work> ProcessGroupPodccl::barrier(const c10d::BarrierOptions & /*opts*/) {
    return enqueue(c10d::OpType::BARRIER, "podccl:barrier", {}, "barrier",
                   [](podcclComm_t comm) { return podcclBarrier(comm, nullptr); });
}

} // namespace podccl_torch
