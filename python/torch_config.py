"""configure's probe for the PyTorch backend: prints KEY=VALUE lines (compile flags that match the
way torch and its pybind11 were built, link directories, the Python version and search path), or
fails (non-zero exit) when this interpreter has no torch with torch.distributed and c10d headers."""
import os
import sys
import sysconfig

import torch
import torch.distributed as dist
from torch.utils import cpp_extension as ce

assert dist.is_available(), "torch.distributed is not available"
inc = [p for p in ce.include_paths() if os.path.isdir(p)] + [sysconfig.get_paths()["include"]]
if not any(os.path.exists(os.path.join(p, "torch/csrc/distributed/c10d/ProcessGroup.hpp")) for p in inc):
    sys.exit("no c10d headers (torch/csrc/distributed/c10d/ProcessGroup.hpp)")
# The extension shares pybind11's type registry with torch: same C++ ABI and pybind11 ABI tags.
flags = ["-D_GLIBCXX_USE_CXX11_ABI=%d" % int(torch._C._GLIBCXX_USE_CXX11_ABI)]
for key in ("COMPILER_TYPE", "STDLIB", "BUILD_ABI"):
    val = getattr(torch._C, "_PYBIND11_" + key, None)
    if val is not None:
        flags.append('-DPYBIND11_%s=\\"%s\\"' % (key, val))
print("TORCH_VERSION=" + torch.__version__)
# -isystem: warnings inside torch's headers are not ours to fix (-Werror builds).
print("TORCH_CPPFLAGS=" + " ".join(flags + ["-isystem " + p for p in inc]))
print("TORCH_INCLUDES=" + " ".join("-I" + p for p in inc))
print("TORCH_LDFLAGS=" + " ".join("-L" + p for p in ce.library_paths() if os.path.isdir(p)))
print("TORCH_PYVER=%d.%d" % sys.version_info[:2])
print("TORCH_SYSPATH=" + ":".join(sys.path))
