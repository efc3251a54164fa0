package conformance

// Lab names of the suite (the same as the lab's).
const (
	SecretName  = "secret.lab.test" // the true name ECH hides
	PublicName  = "public.lab.test" // the ECHConfig public_name of every key
	ForeignName = "other.lab.test"  // the only name ServerRetryForeignCert's certificate is valid for
)

// ServerVariant names how a case's HTTPS server behaves. StartServer
// starts one.
type ServerVariant string

// The server variants. Each is faithful on the wire: a real TLS server, or
// a relay that edits real bytes. Variants that cannot be built faithfully
// are not listed (see server_variants.go for why).
const (
	// ServerGood is a shared-mode ECH server holding Env.Key: it accepts
	// ECH for secret.lab.test.
	ServerGood ServerVariant = "good"
	// ServerRejectNoRetry holds only Env.Other, so it cannot decrypt a
	// ClientHello sealed to Env.Key; it rejects ECH and sends no
	// retry_configs.
	ServerRejectNoRetry ServerVariant = "reject-no-retry"
	// ServerRetryForeignCert rejects ECH with retry configs (Env.Other) but
	// presents a certificate valid only for ForeignName, not for the public
	// name, so the client must not use them (RFC 9849 §6.1.6, §6.1.7).
	ServerRetryForeignCert ServerVariant = "retry-foreign-cert"
	// ServerRetryStale rejects ECH and sends, with a valid public-name
	// certificate, retry configs it cannot decrypt either: a client that
	// follows them is rejected again and must not retry a second time
	// (RFC 9849 §6.1.6).
	ServerRetryStale ServerVariant = "retry-stale"
	// ServerFlipConfirmation is ServerGood behind a relay that flips one
	// bit of the ServerHello's acceptance confirmation (random[24:32],
	// RFC 9849 §7.2): the client sees ECH as rejected while the server
	// proceeds with the inner hello's handshake.
	ServerFlipConfirmation ServerVariant = "flip-confirmation"
	// ServerHRRNoECH accepts ECH (Env.Key) but answers with a
	// HelloRetryRequest, and a relay removes the HRR's
	// encrypted_client_hello extension (its hrr_accept_confirmation): the
	// client must take ECH as rejected (RFC 9849 §6.1.4) and go on with
	// ClientHelloOuter, while the server expects the inner handshake.
	ServerHRRNoECH ServerVariant = "hrr-without-ech"
	// ServerFlipHRRConfirmation accepts ECH (Env.Key) and answers with a
	// HelloRetryRequest, one bit of whose encrypted_client_hello
	// extension (the 8-byte hrr_accept_confirmation, RFC 9849 §7.2.1) a
	// relay flips: the client must take ECH as rejected (§6.1.4) and go on
	// with ClientHelloOuter, while the server expects the inner handshake.
	ServerFlipHRRConfirmation ServerVariant = "flip-hrr-confirmation"
	// ServerCloseAfterSH is ServerGood behind a relay that forwards the
	// record carrying the ServerHello and then closes both connections.
	ServerCloseAfterSH ServerVariant = "close-after-server-hello"
)

// Variants lists every server variant StartServer can start, in catalogue
// order.
func Variants() []ServerVariant {
	return []ServerVariant{ServerGood, ServerRejectNoRetry, ServerRetryForeignCert, ServerRetryStale,
		ServerFlipConfirmation, ServerHRRNoECH, ServerFlipHRRConfirmation, ServerCloseAfterSH}
}
