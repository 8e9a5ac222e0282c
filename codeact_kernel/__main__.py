"""`python -m codeact_kernel` launches the kernel; `python -m codeact_kernel install` registers it."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "install":
    from .install import main

    sys.exit(main(sys.argv[2:]))

from ipykernel.kernelapp import IPKernelApp  # noqa: E402

from .kernel import CodeActKernel  # noqa: E402

IPKernelApp.launch_instance(kernel_class=CodeActKernel)
