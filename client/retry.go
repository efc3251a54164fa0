package client

import (
	"context"
	"fmt"

	"github.com/echlab/echlab/ech"
)

// fetchECH offers ECH with the configured or discovered config. On a
// rejection that carries retry configs it retries once with them: crypto/tls
// only returns ECHRejectionError after the outer handshake completed and
// the certificate verified for the public name, so the retry configs are
// authenticated (RFC 9849 §6.1.6). A second rejection is final; the client
// never loops. Everything that stops ECH goes through fallbackOr.
func (f *fetcher) fetchECH(ctx context.Context, d *Discovery) error {
	list, source, err := f.configFor(d)
	if err != nil {
		return f.fallbackOr(ctx, err)
	}
	f.res.ConfigSource = source
	offer, cfg, err := SelectConfig(list)
	if err != nil {
		return f.fallbackOr(ctx, &Error{Class: ClassConfig, Op: "ech-config", Err: err})
	}
	f.noteConfig(cfg, false)
	err = f.connect(ctx, offer)
	if err == nil {
		f.res.ECH = ECHAccepted
		return nil
	}
	rej, ok := isRejection(err)
	if !ok {
		return err
	}
	f.res.ECH = ECHRejected
	if len(rej.RetryConfigList) == 0 || f.opts.NoRetry {
		return f.fallbackOr(ctx, &Error{Class: ClassECHRejected, Op: "handshake",
			Err: &ECHRejectedError{RetryConfigList: rej.RetryConfigList}})
	}
	return f.retry(ctx, rej.RetryConfigList)
}

// retry makes the one permitted second attempt with the retry configs.
func (f *fetcher) retry(ctx context.Context, retryList []byte) error {
	offer, cfg, err := SelectConfig(retryList)
	if err != nil {
		return f.fallbackOr(ctx, &Error{Class: ClassECHRejected, Op: "retry-config",
			Err: fmt.Errorf("%w: unusable retry configs: %w", ErrECHRejected, err)})
	}
	f.res.Retried = true
	f.noteConfig(cfg, true)
	err = f.connect(ctx, offer)
	if err == nil {
		f.res.ECH = ECHAccepted
		return nil
	}
	if rej, ok := isRejection(err); ok {
		return f.fallbackOr(ctx, &Error{Class: ClassECHRejected, Op: "retry",
			Err: &ECHRejectedError{RetryConfigList: rej.RetryConfigList, Retried: true}})
	}
	return err
}

func (f *fetcher) noteConfig(cfg *ech.Config, retry bool) {
	id := cfg.ConfigID
	if retry {
		f.res.RetryConfigID = &id
	} else {
		f.res.ConfigID = &id
	}
	f.res.PublicName, f.res.OuterSNI = cfg.PublicName, cfg.PublicName
}

// fallbackOr fails with reason under fail-closed; under PolicyFallback it
// connects again without ECH and records why.
func (f *fetcher) fallbackOr(ctx context.Context, reason error) error {
	if f.opts.Policy != PolicyFallback {
		return reason
	}
	f.res.ECH, f.res.Fallback, f.res.FallbackReason = ECHFallback, true, reason.Error()
	f.res.OuterSNI = f.res.InnerSNI
	return f.connect(ctx, nil)
}

// configFor returns the ECHConfigList to offer and where it came from.
func (f *fetcher) configFor(d *Discovery) ([]byte, string, error) {
	switch {
	case f.opts.ConfigList != nil:
		return f.opts.ConfigList, SourceOption, nil
	case d != nil && d.ConfigList != nil:
		return d.ConfigList, SourceDNS, nil
	case f.opts.Resolver == nil:
		return nil, "", &Error{Class: ClassDNS, Op: "ech-config", Err: fmt.Errorf("%w: %w and no config list given", ErrNoConfig, ErrNoResolver)}
	case !d.Found:
		return nil, "", &Error{Class: ClassDNS, Op: "ech-config", Err: fmt.Errorf("%w: %w at %s", ErrNoConfig, ErrNoHTTPSRecord, d.Owner)}
	}
	return nil, "", &Error{Class: ClassDNS, Op: "ech-config", Err: fmt.Errorf("%w: the HTTPS record for %s has no ech SvcParam", ErrNoConfig, d.Owner)}
}
