"""The ``h5md`` format of ``ase.io`` (entry point ``ase.ioformats``), served by :mod:`ase_cg.io`.

``ase.io.read("run.h5", index=":")``, ``ase.io.write("run.h5md", images)`` and ``ase gui run.h5``
call :func:`ase_cg.io.read_h5md` / :func:`ase_cg.io.write_h5md`. This module is separate from
:mod:`ase_cg.io` because ``ase.io.formats`` loads its entry points while it is first imported,
which :mod:`ase_cg.io` may itself be doing: the format object must not need :mod:`ase_cg.io`.
"""

from ase.io.formats import ExternalIOFormat

H5MD_IO_FORMAT = ExternalIOFormat(
    desc="H5MD trajectory (ase_cg)", code="+S", module="ase_cg.io", ext=["h5md", "h5"]
)
