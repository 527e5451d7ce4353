"""CloudFront's managed origin request policies the template may name, as documented (Amazon
CloudFront Developer Guide, "Use managed origin request policies"): whether the origin gets
the viewer's Host header, and which CloudFront headers it adds."""

from __future__ import annotations

from dataclasses import dataclass

CLOUDFRONT_HEADERS_2022_06 = (
    "CloudFront-Forwarded-Proto",
    "CloudFront-Is-Android-Viewer",
    "CloudFront-Is-Desktop-Viewer",
    "CloudFront-Is-IOS-Viewer",
    "CloudFront-Is-Mobile-Viewer",
    "CloudFront-Is-SmartTV-Viewer",
    "CloudFront-Is-Tablet-Viewer",
    "CloudFront-Viewer-Address",
    "CloudFront-Viewer-ASN",
    "CloudFront-Viewer-City",
    "CloudFront-Viewer-Country",
    "CloudFront-Viewer-Http-Version",
    "CloudFront-Viewer-TLS",
)


@dataclass(frozen=True)
class OriginRequestPolicy:
    name: str
    forwards_viewer_host: bool
    cloudfront_headers: tuple[str, ...]


MANAGED_ORIGIN_REQUEST_POLICIES = {
    "216adef6-5c7f-47e4-b989-5492eafa07d3": OriginRequestPolicy("AllViewer", True, ()),
    "33f36d7e-f396-46d9-90e0-52428a34d9dc": OriginRequestPolicy(
        "AllViewerAndCloudFrontHeaders-2022-06", True, CLOUDFRONT_HEADERS_2022_06
    ),
    "b689b0a8-53d0-40ab-baf2-68738e2966ac": OriginRequestPolicy(
        "AllViewerExceptHostHeader", False, CLOUDFRONT_HEADERS_2022_06
    ),
}
