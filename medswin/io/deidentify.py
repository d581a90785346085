"""De-identify a DICOM object medswin wrote (a DICOM-SEG) for sharing outside the hospital.

Follows the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile for what a SEG
carries from its source: the patient module, the study's identifying attributes, people, places,
device identifiers, private tags and every instance UID.

* UIDs become ``2.25.<HMAC-SHA-256 of the UID under the folder key>``, so the same source study,
  series and frame of reference get the same new UID in every SEG of the folder: SEGs of one
  study stay one study, and each SEG still references its (equally de-identified) source series.
* The patient becomes ``ANON-<10 hex>`` (name and id), an HMAC of the original PatientID (else
  name), so one patient's studies stay linked without saying who it is.
* PatientIdentityRemoved ``YES``, DeidentificationMethod and its code (DCM 113100) say what was done.

Dates of the SEG itself (ContentDate, type 1) are when medswin wrote it, not patient information,
and are kept; the study's date and time are emptied (type 2).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from medswin.io.phi import PHI_ATTRIBUTES

__all__ = ["METHOD", "deidentify_dataset", "pseudonymous_uid", "pseudonymous_patient"]

METHOD = "DICOM PS3.15 E.1 Basic Application Confidentiality Profile"

#: emptied (type 2 in the SEG's modules: present, zero length).
_EMPTIED = (
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
#: removed: the patient identifiers medswin masks in logs (:data:`medswin.io.phi.PHI_ATTRIBUTES`)
#: that are not replaced or emptied, and the study's people, places and descriptions.
_REMOVED = (
    *(k for k in PHI_ATTRIBUTES if k not in {"PatientName", "PatientID", *_EMPTIED}),
    "OtherPatientIDsSequence",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "Occupation",
    "AdditionalPatientHistory",
    "PatientComments",
    "IssuerOfPatientID",
    "StudyDescription",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianAddress",
    "PhysiciansOfRecord",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "StationName",
    "RequestAttributesSequence",
    "ContentCreatorName",
)
#: UID attributes that name a kind of thing (SOP class, transfer syntax, coding scheme): kept.
_CLASS_UIDS = {
    "SOPClassUID",
    "ReferencedSOPClassUID",
    "MediaStorageSOPClassUID",
    "TransferSyntaxUID",
    "CodingSchemeUID",
    "ContextUID",
    "MappingResourceUID",
}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("ascii", "replace"), hashlib.sha256).digest()


def pseudonymous_uid(uid: str, key: bytes) -> str:
    """``uid`` replaced by a UUID-derived UID (``2.25.<128-bit integer>``, at most 44 characters)."""
    return f"2.25.{int.from_bytes(_hmac(key, str(uid))[:16], 'big')}"


def pseudonymous_patient(ds: Any, key: bytes) -> str:
    """``ANON-<10 hex>`` of the patient of ``ds`` (its PatientID, else its name)."""
    source = str(ds.get("PatientID") or ds.get("PatientName") or "")
    return f"ANON-{_hmac(key, source).hex()[:10].upper()}"


def _remap_uids(ds: Any, key: bytes, visited: set[int] | None = None) -> None:
    """Every instance UID in ``ds`` and its sequences, each item once (highdicom shares one
    reference item between several sequences; mapping it twice would break the reference)."""
    visited = set() if visited is None else visited
    if id(ds) in visited:
        return
    visited.add(id(ds))
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _remap_uids(item, key, visited)
        elif element.VR == "UI" and element.keyword not in _CLASS_UIDS and element.value:
            if element.VM > 1:
                element.value = [pseudonymous_uid(v, key) for v in element.value]
            else:
                element.value = pseudonymous_uid(element.value, key)


def deidentify_dataset(ds: Any, key: bytes) -> None:
    """De-identify ``ds`` in place (see the module docstring)."""
    from pydicom.dataset import Dataset

    patient = pseudonymous_patient(ds, key)
    ds.remove_private_tags()
    for keyword in _REMOVED:
        if keyword in ds:
            delattr(ds, keyword)
    for keyword in _EMPTIED:
        if keyword in ds:
            setattr(ds, keyword, "")
    ds.PatientName = patient
    ds.PatientID = patient
    _remap_uids(ds, key)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
