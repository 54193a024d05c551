"""One valid request per RPC of every service, naming model ``m`` (READY version 1, its one
file ``FILE``; uploads are for ``PENDING_VERSION``, 2); the ones that delete name what is not
there. Tests that call every RPC (the access
matrix, the database outage) share it, so a new RPC needs one entry here."""

from __future__ import annotations

from google.protobuf import duration_pb2, field_mask_pb2
from google.protobuf.message import Message

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.access.v1 import role_binding_pb2
from modelregistry.artifact.v1 import artifact_service_pb2 as art
from modelregistry.artifact.v1 import blob_pb2
from modelregistry.metadata.v1 import audit_chain_pb2, governance_pb2, model_pb2, model_version_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from tests.support.artifacts import sha256_hex

MODEL, VERSION, PENDING_VERSION = "models/m", "models/m/versions/1", "models/m/versions/2"
FILE = b"matrix weights"
DIGEST = sha256_hex(FILE)
ABSENT = "0" * 64


def requests_by_rpc() -> dict[str, Message]:
    """One request per method, naming model ``m``; destructive ones name what is not there."""
    files = [model_version_pb2.ManifestFile(path="w.bin", sha256=DIGEST, size_bytes=len(FILE))]
    mask = field_mask_pb2.FieldMask(paths=["description"])
    return {
        "GetModel": ms.GetModelRequest(name=MODEL),
        "ListModels": ms.ListModelsRequest(),
        "CreateModel": ms.CreateModelRequest(model_id="m", model=model_pb2.Model()),
        "UpdateModel": ms.UpdateModelRequest(
            model=model_pb2.Model(name=MODEL, description="d"), update_mask=mask
        ),
        "DeleteModel": ms.DeleteModelRequest(name=MODEL),  # it has versions: refused, not gone
        "GetModelVersion": ms.GetModelVersionRequest(name=VERSION),
        "ListModelVersions": ms.ListModelVersionsRequest(parent=MODEL),
        "CreateModelVersion": ms.CreateModelVersionRequest(parent=MODEL),
        "UpdateModelVersion": ms.UpdateModelVersionRequest(
            model_version=model_version_pb2.ModelVersion(name=VERSION, description="d"),
            update_mask=mask,
        ),
        "DeleteModelVersion": ms.DeleteModelVersionRequest(name="models/m/versions/99"),
        "CommitModelVersion": ms.CommitModelVersionRequest(name=VERSION, files=files),
        "ResolveModelVersion": ms.ResolveModelVersionRequest(ref="m@production"),
        "SetAlias": ms.SetAliasRequest(model=MODEL, alias="production", version=VERSION),
        "DeleteAlias": ms.DeleteAliasRequest(name=f"{MODEL}/aliases/none"),
        "ListAliases": ms.ListAliasesRequest(parent=MODEL),
        "WatchModelEvents": ms.WatchModelEventsRequest(model=MODEL),
        "ListAuditEvents": ms.ListAuditEventsRequest(model=MODEL),
        "VerifyAuditLog": audit_chain_pb2.VerifyAuditLogRequest(),
        "ExportAuditLog": audit_chain_pb2.ExportAuditLogRequest(page_size=10),
        "RunGarbageCollection": ms.RunGarbageCollectionRequest(
            dry_run=True, grace_period=duration_pb2.Duration(seconds=2 * 86400)
        ),
        "CreateUploadSession": art.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=DIGEST, size_bytes=len(FILE)),
            model_version=PENDING_VERSION,
        ),
        "Write": art.WriteRequest(upload_session="uploads/" + "0" * 32, finish_write=True),
        "QueryWriteStatus": art.QueryWriteStatusRequest(upload_session="uploads/" + "0" * 32),
        "FinishDirectUpload": art.FinishDirectUploadRequest(
            upload_session="uploadSessions/" + "0" * 32
        ),
        "Read": art.ReadRequest(sha256=DIGEST, model_version=VERSION),
        "FindMissingBlobs": art.FindMissingBlobsRequest(
            blobs=[blob_pb2.BlobRef(sha256=DIGEST, size_bytes=len(FILE))]
        ),
        "GetBlob": art.GetBlobRequest(name=f"blobs/{DIGEST}"),
        "GenerateDownloadUrl": art.GenerateDownloadUrlRequest(
            name=f"blobs/{DIGEST}", model_version=VERSION
        ),
        "ListBlobs": art.ListBlobsRequest(),
        "DeleteBlob": art.DeleteBlobRequest(name=f"blobs/{ABSENT}"),
        "WhoAmI": acc.WhoAmIRequest(),
        "TestPermissions": acc.TestPermissionsRequest(permissions=["models.read"]),
        "CreateAccessToken": acc.CreateAccessTokenRequest(principal="made-by-matrix"),
        "ListAccessTokens": acc.ListAccessTokensRequest(),
        "RevokeAccessToken": acc.RevokeAccessTokenRequest(name="tokens/0123456789abcdef"),
        "CreateRoleBinding": acc.CreateRoleBindingRequest(
            role_binding=role_binding_pb2.RoleBinding(subject="nobody", role="viewer", scope="m")
        ),
        "ListRoleBindings": acc.ListRoleBindingsRequest(),
        "DeleteRoleBinding": acc.DeleteRoleBindingRequest(name="roleBindings/0123456789abcdef"),
        **_governance_requests(),
    }


def _governance_requests() -> dict[str, Message]:
    """Checks, protection rules and approvals; the deleting ones name what is not there."""
    check = governance_pb2.Check(
        check_name="eval/accuracy", status=governance_pb2.Check.STATUS_PASSED
    )
    rule = governance_pb2.ProtectionRule(
        name="protectionRules/m/aliases/gated", required_checks=["eval/accuracy"]
    )
    return {
        "ReportCheck": governance_pb2.ReportCheckRequest(parent=VERSION, check=check),
        "ListChecks": governance_pb2.ListChecksRequest(parent=VERSION),
        "SetProtectionRule": governance_pb2.SetProtectionRuleRequest(protection_rule=rule),
        "ListProtectionRules": governance_pb2.ListProtectionRulesRequest(),
        "DeleteProtectionRule": governance_pb2.DeleteProtectionRuleRequest(
            name="protectionRules/m/aliases/none"
        ),
        "ApproveModelVersion": governance_pb2.ApproveModelVersionRequest(
            name=VERSION, alias="production"
        ),
        "WithdrawApproval": governance_pb2.WithdrawApprovalRequest(name=VERSION, alias="none"),
        "ListApprovals": governance_pb2.ListApprovalsRequest(parent=VERSION),
    }
