"""TLS on the OCPP port: security profiles 2 and 3 (OCPP 2.0.1 Part 2 A00; 1.6 security whitepaper).

Profile 2 is TLS with a server certificate plus the Basic auth of profile 1;
profile 3 is mutual TLS, the station proving who it is with a client
certificate signed by a CA the operator configured.
"""

import ssl

from websockets.asyncio.server import ServerConnection

from csms_gateway.settings import GatewaySettings


def server_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """The OCPP listener's TLS context, or None when it speaks plain ws://."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # OCPP 2.0.1 Part 2 A00 and the 1.6 security whitepaper: TLS 1.2 or higher only.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    if settings.tls_client_ca_file is not None:
        context.load_verify_locations(cafile=settings.tls_client_ca_file)
        # Optional, not required: profile-2 stations (password, no certificate) share the
        # port with profile 3. A certificate that is sent is still verified against the CAs.
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def tls_session(connection: ServerConnection) -> ssl.SSLObject | None:
    """The connection's TLS session; None on plain ws://."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    return ssl_object if isinstance(ssl_object, ssl.SSLObject) else None


def certificate_common_names(session: ssl.SSLObject) -> list[str] | None:
    """The subject CNs of the station's verified certificate; None if it sent none."""
    certificate = session.getpeercert()
    if not certificate:
        return None
    subject = certificate.get("subject", ())
    return [
        attribute[1]
        for relative_name in (subject if isinstance(subject, tuple) else ())
        for attribute in relative_name
        if attribute[0] == "commonName"
    ]
