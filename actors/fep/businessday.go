package fep

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/cutover"
	"github.com/quancun/quancun/io/ftpup"
	"github.com/quancun/quancun/recon"
	"github.com/quancun/quancun/recon/fepstore"
)

const cutoverName = "cutover"

// ReconStore is what producing the file needs of the store (persistence.Store has it).
type ReconStore interface {
	fepstore.Scanner
}

// Terminals maps each configured bank to the terminal id of the FEP's link to it (the bank
// keys its settlement lines by it).
func (c Config) Terminals() map[string]string {
	m := make(map[string]string, len(c.Banks))
	for _, b := range c.Banks {
		m[b.Code] = b.Terminal
	}
	return m
}

// ReconRecords reads the file records of accounting date date (and their bank keys) from a
// store with this configuration's business day and banks. The FEP's schedule and the
// `quancun recon` / `quancun report` commands share it, so they agree byte for byte.
func (c Config) ReconRecords(s ReconStore, date string, progress func(read int)) ([]recon.Record, map[string]recon.BankKey, error) {
	cal, err := c.BusinessDay.Calendar()
	if err != nil {
		return nil, nil, err
	}
	res, err := cutover.NewResolver(s, cal)
	if err != nil {
		return nil, nil, err
	}
	return fepstore.Read(s, fepstore.Options{AcctDate: date, BusinessDate: res.DateAt, Zone: cal.Zone,
		Terminals: c.Terminals(), Progress: progress})
}

// ReconFile renders the reconciliation file of date (DESIGN 8): its name and bytes.
func (c Config) ReconFile(s ReconStore, date string, progress func(read int)) (string, []byte, []recon.Record, error) {
	recs, _, err := c.ReconRecords(s, date, progress)
	if err != nil {
		return "", nil, nil, err
	}
	var b bytes.Buffer
	if err := recon.WriteFile(&b, recs, recon.FileOptions{MaskPAN: c.Reconciliation.MaskPAN}); err != nil {
		return "", nil, nil, fmt.Errorf("reconciliation file %s: %w", date, err)
	}
	return recon.FileName(c.Platform.AuthCode, date), b.Bytes(), recs, nil
}

// cutoverChild is the business day actor, producing from the live store and uploading to
// [reconciliation] ftp_addr when set.
func (f *FEP) cutoverChild(cfg Config, platformPID *actor.PID, log *slog.Logger) (child, error) {
	cal, err := cfg.BusinessDay.Calendar()
	if err != nil {
		return child{}, err
	}
	rc := cfg.Reconciliation
	deps := cutover.Deps{Store: f.store, Platform: platformPID, Logger: log,
		Produce: func(date string) (string, []byte, error) {
			name, data, _, err := cfg.ReconFile(f.store, date, nil)
			if err != nil || rc.OutDir == "" {
				return name, data, err
			}
			if err := writeCopy(filepath.Join(rc.OutDir, name), data); err != nil {
				return "", nil, err
			}
			return name, data, nil
		}}
	up, ok, err := rc.FTP()
	if err != nil {
		return child{}, err
	}
	if ok {
		up.Logger = log.With("component", "ftpup")
		deps.Upload = func(ctx context.Context, name string, data []byte) error { return ftpup.Upload(ctx, up, name, data) }
	} else {
		log.Info("reconciliation: no [reconciliation] ftp_addr; files are produced but not uploaded")
	}
	return child{name: cutoverName, props: cutover.Props(cutover.Config{Calendar: cal, Delay: rc.DelayDays()}, deps)}, nil
}

// writeCopy keeps the local copy: a temporary name, synced, then renamed.
func writeCopy(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = fh.Write(data); err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
