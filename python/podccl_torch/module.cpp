// The Python module podccl_torch._C: ProcessGroupPodccl as a subclass of
// torch.distributed.ProcessGroup (c10d's pybind type), so that c10d, DDP and user code treat it
// as any other process group.
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include "ProcessGroupPodccl.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
    m.doc() = "podccl's c10d backend (ProcessGroupPodccl)";
    // c10d's pybind types (ProcessGroup, Store) must be registered before ours refers to them.
    py::object c10d = py::module::import("torch._C._distributed_c10d");
    py::class_<podccl_torch::ProcessGroupPodccl,
               c10::intrusive_ptr<podccl_torch::ProcessGroupPodccl>>(
        m, "ProcessGroupPodccl", c10d.attr("ProcessGroup"),
        "A c10d process group on one podccl communicator (CPU tensors). Construct it through\n"
        "torch.distributed.init_process_group('podccl') / new_group(backend='podccl').")
        .def(py::init<const c10::intrusive_ptr<c10d::Store> &, int, int, double,
                      const std::string &>(),
             py::arg("store"), py::arg("rank"), py::arg("size"), py::arg("timeout_sec"),
             py::arg("name") = "", py::call_guard<py::gil_scoped_release>(),
             "Collective over the group: rank 0 puts a podccl unique id into store, every rank\n"
             "joins. timeout_sec becomes the communicator's timeout.")
        .def("transport_info", &podccl_torch::ProcessGroupPodccl::transportInfo,
             "podccl's transport and topology summary of this group's communicator.");
    int version = 0;
    podcclGetVersion(&version);
    m.attr("podccl_version") = version;
}
