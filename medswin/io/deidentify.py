"""De-identify a DICOM object medswin wrote (a DICOM-SEG) for sharing outside the hospital.

Follows the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile: every attribute
of :data:`ANNEX_E` (Table E.1-1) is handled wherever it occurs, at the top level and inside every
item of every sequence at any depth (a SEG copies the source's acquisition equipment into
ContributingEquipmentSequence, with the hospital's name, address, station and device serial).
Private tags are removed everywhere.

* UIDs become ``2.25.<HMAC-SHA-256 of the UID under the folder key>``, so the same source study,
  series and frame of reference get the same new UID in every SEG of the folder: SEGs of one
  study stay one study, and each SEG still references its (equally de-identified) source series.
* The patient becomes ``ANON-<10 hex>`` (name and id), an HMAC of the original PatientID (else
  name), so one patient's studies stay linked without saying who it is.
* The SEG's type 2 study and patient attributes (:data:`_EMPTIED`) are emptied; every other
  attribute of the table is removed, with its sequence when it is one. Sequences the SEG needs
  (its references to the source images, action ``U*`` in the table) are kept and walked.
* PatientIdentityRemoved ``YES``, DeidentificationMethod and its code (DCM 113100) say what was done.

What medswin writes itself at the top level (:data:`_OWN`: when the SEG was made, its series
description, its own device serial) is not patient information and is kept.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

__all__ = [
    "ANNEX_E",
    "METHOD",
    "REVISION",
    "deidentify_dataset",
    "pseudonymous_uid",
    "pseudonymous_patient",
]

METHOD = "DICOM PS3.15 E.1 Basic Application Confidentiality Profile"
#: what records note as the ``deidentify`` setting: a SEG made by an earlier revision is redone
#: (revision 1, recorded as ``true``, kept the source equipment in nested sequences).
REVISION = 2

#: DICOM PS3.15 Table E.1-1 (Basic Profile), the attributes a CT, MR or PET series and a SEG made
#: from it can hold, keyword -> the table's action code (``D`` dummy, ``Z`` empty, ``X`` remove,
#: ``K`` keep, ``C`` clean, ``U`` new UID; ``X/Z`` etc.: whichever the IOD allows; ``*``: for
#: sequences of references, which are kept and their UIDs replaced).
ANNEX_E: dict[str, str] = {
    # --- patient
    "PatientName": "Z",
    "PatientID": "Z",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientSex": "Z",
    "PatientAge": "X",
    "PatientSize": "X",
    "PatientWeight": "X",
    "PatientAddress": "X",
    "PatientBirthName": "X",
    "PatientMotherBirthName": "X",
    "PatientTelephoneNumbers": "X",
    "PatientTelecomInformation": "X",
    "PatientComments": "X",
    "PatientReligiousPreference": "X",
    "PatientSexNeutered": "X/Z",
    "PatientState": "X",
    "PatientTransportArrangements": "X",
    "PatientInstitutionResidence": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "PatientPrimaryLanguageCodeSequence": "X",
    "PatientPrimaryLanguageModifierCodeSequence": "X",
    "PatientSpeciesDescription": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "IssuerOfPatientID": "X",
    "MedicalRecordLocator": "X",
    "EthnicGroup": "X",
    "Occupation": "X",
    "AdditionalPatientHistory": "X",
    "Allergies": "X",
    "MedicalAlerts": "X",
    "PregnancyStatus": "X",
    "LastMenstrualDate": "X",
    "SmokingStatus": "X",
    "SpecialNeeds": "X",
    "MilitaryRank": "X",
    "BranchOfService": "X",
    "CountryOfResidence": "X",
    "RegionOfResidence": "X",
    "InsurancePlanIdentification": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPatientAliasSequence": "X",
    "ReferencedPatientPhotoSequence": "X",
    "SourcePatientGroupIdentificationSequence": "X",
    "GroupOfPatientsIdentificationSequence": "X",
    "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X",
    "PersonName": "D",
    "PersonAddress": "X",
    "PersonTelephoneNumbers": "X",
    "PersonTelecomInformation": "X",
    "PersonIdentificationCodeSequence": "D",
    # --- visit and admission
    "AdmissionID": "X",
    "IssuerOfAdmissionID": "X",
    "IssuerOfAdmissionIDSequence": "X",
    "AdmittingDate": "X",
    "AdmittingTime": "X",
    "AdmittingDiagnosesDescription": "X",
    "AdmittingDiagnosesCodeSequence": "X",
    "DischargeDiagnosisDescription": "X",
    "CurrentPatientLocation": "X",
    "ScheduledPatientInstitutionResidence": "X",
    "ServiceEpisodeID": "X",
    "ServiceEpisodeDescription": "X",
    "IssuerOfServiceEpisodeID": "X",
    "VisitComments": "X",
    # --- study and request
    "StudyInstanceUID": "U",
    "StudyDate": "Z",
    "StudyTime": "Z",
    "StudyID": "Z",
    "AccessionNumber": "Z",
    "StudyDescription": "X",
    "StudyComments": "X",
    "StudyIDIssuer": "X",
    "ReasonForStudy": "X",
    "ReferencedStudySequence": "X/Z",
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ConsultingPhysicianName": "Z",
    "ConsultingPhysicianIdentificationSequence": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "RequestingServiceCodeSequence": "X",
    "RequestAttributesSequence": "X",
    "RequestedProcedureID": "X",
    "RequestedProcedureDescription": "X/Z",
    "RequestedProcedureComments": "X",
    "RequestedProcedureLocation": "X",
    "RequestedContrastAgent": "X",
    "ReasonForTheImagingServiceRequest": "X",
    "ImagingServiceRequestComments": "X",
    "PlacerOrderNumberImagingServiceRequest": "Z",
    "FillerOrderNumberImagingServiceRequest": "Z",
    "OrderEnteredBy": "X",
    "OrderEntererLocation": "X",
    "OrderCallbackPhoneNumber": "X",
    "OrderCallbackTelecomInformation": "X",
    "NamesOfIntendedRecipientsOfResults": "X",
    "IntendedRecipientsOfResultsIdentificationSequence": "X",
    "ScheduledProcedureStepID": "X",
    "ScheduledProcedureStepDescription": "X",
    "ScheduledProcedureStepLocation": "X",
    "ScheduledProcedureStepStartDate": "X",
    "ScheduledProcedureStepStartTime": "X",
    "ScheduledProcedureStepStartDateTime": "X",
    "ScheduledProcedureStepEndDate": "X",
    "ScheduledProcedureStepEndTime": "X",
    "ScheduledProcedureStepModificationDateTime": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ScheduledPerformingPhysicianIdentificationSequence": "X",
    "ScheduledHumanPerformersSequence": "X",
    "ScheduledStationAETitle": "X",
    "ScheduledStationName": "X",
    "ScheduledStationNameCodeSequence": "X",
    "ScheduledStationGeographicLocationCodeSequence": "X",
    "ScheduledStudyLocation": "X",
    "ScheduledStudyLocationAETitle": "X",
    "PerformedProcedureStepID": "X",
    "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepStartDateTime": "X",
    "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndTime": "X",
    "PerformedProcedureStepEndDateTime": "X",
    "PerformedLocation": "X",
    "PerformedStationAETitle": "X",
    "PerformedStationName": "X",
    "PerformedStationNameCodeSequence": "X",
    "PerformedStationGeographicLocationCodeSequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X/Z/D",
    "CommentsOnThePerformedProcedureStep": "X",
    "ActualHumanPerformersSequence": "X",
    "HumanPerformerName": "X",
    "HumanPerformerOrganization": "X",
    "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "OperatorsName": "X/Z/D",
    "OperatorIdentificationSequence": "X/D",
    # --- clinical trial
    "ClinicalTrialSponsorName": "D",
    "ClinicalTrialProtocolID": "D",
    "ClinicalTrialProtocolName": "Z",
    "ClinicalTrialSiteID": "Z",
    "ClinicalTrialSiteName": "Z",
    "ClinicalTrialSubjectID": "D",
    "ClinicalTrialSubjectReadingID": "D",
    "ClinicalTrialTimePointID": "Z",
    "ClinicalTrialTimePointDescription": "X",
    "ClinicalTrialCoordinatingCenterName": "Z",
    "ClinicalTrialProtocolEthicsCommitteeName": "D",
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber": "X",
    "ClinicalTrialSeriesID": "X",
    "ClinicalTrialSeriesDescription": "X",
    # --- series, equipment, places
    "SeriesInstanceUID": "U",
    "SeriesDate": "X/D",
    "SeriesTime": "X/D",
    "SeriesDescription": "X",
    "ProtocolName": "X/D",
    "InstitutionName": "X/Z/D",
    "InstitutionAddress": "X",
    "InstitutionCodeSequence": "X/Z/D",
    "InstitutionalDepartmentName": "X",
    "InstitutionalDepartmentTypeCodeSequence": "X",
    "StationName": "X/Z/D",
    "DeviceSerialNumber": "X/Z/D",
    "DeviceUID": "U",
    "DeviceDescription": "X",
    "DetectorID": "X/D",
    "GantryID": "X",
    "GeneratorID": "X",
    "CassetteID": "X",
    "ModifyingDeviceID": "X",
    "DateOfLastCalibration": "X",
    "DateTimeOfLastCalibration": "X",
    "CalibrationDateTime": "Z",
    "DateOfInstallation": "X",
    "ContributionDateTime": "X/D",
    "ContributionDescription": "X",
    "DerivationDescription": "X",
    "AcquisitionDeviceProcessingDescription": "X/D",
    "AcquisitionComments": "X",
    "AcquisitionProtocolDescription": "X",
    "AcquisitionContextSequence": "X",
    "ContrastBolusAgent": "Z/D",
    "ContrastBolusStartTime": "X",
    "ContrastBolusStopTime": "X",
    "PreMedication": "X",
    "TimezoneOffsetFromUTC": "X",
    # --- instance
    "SOPInstanceUID": "U",
    "MediaStorageSOPInstanceUID": "U",
    "FrameOfReferenceUID": "U",
    "SynchronizationFrameOfReferenceUID": "U",
    "ReferencedFrameOfReferenceUID": "U",
    "RelatedFrameOfReferenceUID": "U",
    "ReferencedSOPInstanceUID": "U",
    "ConcatenationUID": "U",
    "DimensionOrganizationUID": "U",
    "IrradiationEventUID": "U",
    "AcquisitionUID": "U",
    "InstanceCreatorUID": "U",
    "StorageMediaFileSetUID": "U",
    "CreatorVersionUID": "U",
    "DoseReferenceUID": "U",
    "FiducialUID": "U",
    "PaletteColorLookupTableUID": "U",
    "LargePaletteColorLookupTableUID": "U",
    "TargetUID": "U",
    "TransactionUID": "U",
    "UID": "U",
    "ContextGroupExtensionCreatorUID": "U",
    "TemplateExtensionCreatorUID": "U",
    "TemplateExtensionOrganizationUID": "U",
    "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID": "U",
    "FailedSOPInstanceUIDList": "U",
    "SourceImageSequence": "X/Z/U*",
    "ReferencedImageSequence": "X/Z/U*",
    "InstanceCreationDate": "X/D",
    "InstanceCreationTime": "X/Z/D",
    "InstanceCoercionDateTime": "X",
    "ContentDate": "X/D",
    "ContentTime": "X/D",
    "AcquisitionDate": "X/D",
    "AcquisitionTime": "X/D",
    "AcquisitionDateTime": "X/D",
    "OverlayDate": "X",
    "OverlayTime": "X",
    "DateOfSecondaryCapture": "X",
    "ContentCreatorName": "Z",
    "ContentCreatorIdentificationCodeSequence": "X",
    "ContentSequence": "X",
    "ImageComments": "X",
    "FrameComments": "X",
    "ImagePresentationComments": "X",
    "IdentifyingComments": "X",
    "TextComments": "X",
    "TextString": "X",
    "IconImageSequence": "X",
    "GraphicAnnotationSequence": "D",
    "ModifiedImageDescription": "X",
    "OriginalAttributesSequence": "X",
    "ModifiedAttributesSequence": "X",
    "DigitalSignaturesSequence": "X",
    "ReferencedDigitalSignatureSequence": "X",
    "ReferencedSOPInstanceMACSequence": "X",
    "MAC": "X",
    "DataSetTrailingPadding": "X",
    "Arbitrary": "X",
    "SpecimenAccessionNumber": "X",
    "ParticipantSequence": "X",
    "AuthorObserverSequence": "X",
    "CustodialOrganizationSequence": "X",
    "VerifyingObserverName": "D",
    "VerifyingObserverSequence": "D",
    "VerifyingObserverIdentificationCodeSequence": "Z",
    "VerifyingOrganization": "D",
    "ConfidentialityConstraintOnPatientDataDescription": "X",
    "DistributionName": "X",
    "DistributionAddress": "X",
    "ResultsDistributionListSequence": "X",
    "ResultsIDIssuer": "X",
    "ResultsComments": "X",
    "Impressions": "X",
    "InterpretationText": "X",
    "InterpretationAuthor": "X",
    "InterpretationRecorder": "X",
    "InterpretationTranscriber": "X",
    "InterpretationApproverSequence": "X",
    "InterpretationDiagnosisDescription": "X",
    "InterpretationIDIssuer": "X",
    "PhysicianApprovingInterpretation": "X",
    "ReviewerName": "X/Z",
    "TelephoneNumberTrial": "X",
    "TopicTitle": "X",
    "TopicSubject": "X",
    "TopicAuthor": "X",
    "TopicKeywords": "X",
}

#: emptied where the SEG or RTSTRUCT holds them at the top level (type 2 there: present, zero length).
_EMPTIED = frozenset(
    {
        "OperatorsName",  # RT Series, type 2
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
        "ContentCreatorName",
    }
)
#: top-level values medswin or highdicom write for the SEG itself, never copied from the source.
_OWN = frozenset(
    {
        "ContentDate",
        "ContentTime",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "SeriesDescription",
        "DeviceSerialNumber",
    }
)
#: replaced by the pseudonym.
_PSEUDONYMOUS = frozenset({"PatientName", "PatientID"})
#: UID attributes that name a kind of thing (SOP class, transfer syntax, coding scheme): kept.
_CLASS_UIDS = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "TransferSyntaxUID",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "ImplementationClassUID",
    }
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("ascii", "replace"), hashlib.sha256).digest()


def pseudonymous_uid(uid: str, key: bytes) -> str:
    """``uid`` replaced by a UUID-derived UID (``2.25.<128-bit integer>``, at most 44 characters)."""
    return f"2.25.{int.from_bytes(_hmac(key, str(uid))[:16], 'big')}"


def pseudonymous_patient(ds: Any, key: bytes) -> str:
    """``ANON-<10 hex>`` of the patient of ``ds`` (its PatientID, else its name)."""
    source = str(ds.get("PatientID") or ds.get("PatientName") or "")
    return f"ANON-{_hmac(key, source).hex()[:10].upper()}"


def _kept_references(action: str) -> bool:
    """A sequence of references the SEG needs (``U*``): kept, its UIDs replaced."""
    return action.endswith("U*")


def _clean(ds: Any, key: bytes, top: bool, visited: set[int]) -> None:
    """Apply the table to ``ds`` and every item below it, each item once (highdicom shares one
    reference item between several sequences; mapping its UIDs twice would break the reference)."""
    if id(ds) in visited:
        return
    visited.add(id(ds))
    ds.remove_private_tags()
    for element in list(ds):
        keyword = element.keyword
        action = ANNEX_E.get(keyword)
        if action is not None and action != "U" and not _kept_references(action):
            if top and keyword in _OWN | _PSEUDONYMOUS:
                continue
            if top and keyword in _EMPTIED:
                element.value = None if element.VR == "SQ" else ""
            else:
                del ds[element.tag]
            continue
        if element.VR == "SQ":
            for item in element.value or []:
                _clean(item, key, False, visited)
        elif element.VR == "UI" and keyword not in _CLASS_UIDS and element.value:
            if element.VM > 1:
                element.value = [pseudonymous_uid(v, key) for v in element.value]
            else:
                element.value = pseudonymous_uid(element.value, key)


def deidentify_dataset(ds: Any, key: bytes) -> None:
    """De-identify ``ds`` in place (see the module docstring)."""
    from pydicom.dataset import Dataset

    patient = pseudonymous_patient(ds, key)
    _clean(ds, key, True, set())
    ds.PatientName = patient
    ds.PatientID = patient
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
