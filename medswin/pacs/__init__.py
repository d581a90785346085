"""Work with a hospital's PACS: cases from DICOMweb (QIDO/WADO) or DIMSE (C-FIND/C-GET) queries,
results stored back (STOW-RS, C-STORE), and a C-STORE listener that segments what it receives.

* :mod:`medswin.pacs.nodes` -- ``dicomweb:URL?query`` and ``dimse://AE@host:port?query`` addresses;
* :mod:`medswin.pacs.auth` -- credentials from the environment or a file (never the command line);
* :mod:`medswin.pacs.base` -- medswin's settings (AE title, TLS trust, C-MOVE port), the node interface;
* :mod:`medswin.pacs.dicomweb` / :mod:`medswin.pacs.dimse` -- one client each (QIDO/WADO/STOW;
  C-FIND, C-GET or C-MOVE, C-STORE), one interface;
* :mod:`medswin.pacs.series` -- query results as series to retrieve (one per series of the model's modality);
* :mod:`medswin.pacs.listener` -- the C-STORE SCP behind ``medswin listen``.

``dicomweb-client`` and ``pynetdicom`` are imported only when a node is contacted.
"""

from __future__ import annotations

from medswin._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "medswin.pacs.nodes": ("PacsAddress", "parse_address", "is_pacs_address"),
        "medswin.pacs.auth": ("Credentials", "load_credentials"),
        "medswin.pacs.series": ("RemoteSeries", "find_series", "connect"),
    },
)
