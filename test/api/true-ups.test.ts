// True-ups end to end over HTTP with a real PostgreSQL: DESIGN.md's worked examples, exceptions and
// approvals, exactly-once issuing, late usage and re-rating.
import { describe, expect, it } from "vitest";
import { useTestApp } from "../helpers/app.js";
import { approveAll, createContract, events, get, ingest, issue, lineOf, post, preview } from "../helpers/factories.js";

const t = useTestApp();

const meter = (metric: string, unitPrice: string, included = "0") => ({ metric, unit: "unit", included, pricing: { model: "per_unit", unitPrice } });

describe("DESIGN.md worked examples, end to end", () => {
  it("annual: platform fee billed externally, 1,400,000 calls with 1,000,000 included at $0.08 → invoice $32,000.00", async () => {
    const c = await createContract(t.app, {
      customerId: "we-annual",
      name: "Annual API",
      currency: "USD",
      billingPeriod: "annual",
      startDate: "2026-01-01",
      endDate: "2026-12-31",
      terms: { platformFee: { amount: "120000.00" }, meters: [meter("api_calls", "0.08", "1000000")] },
    });
    const billed = await post(t.app, `/v1/contracts/${c.id}/external-billings`, {
      periodStart: "2026-01-01T00:00:00Z",
      periodEnd: "2027-01-01T00:00:00Z",
      amount: "120000.00",
      reference: "NETSUITE-INV-8812",
    }, "writer");
    expect(billed.statusCode, billed.body).toBe(201);
    await ingest(t.app, events("we-annual", "api_calls", "1400000", "2026-03-15T12:00:00Z", 14));

    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(calc, "platform_fee").amount).toBe("120000.00");
    const usage = lineOf(calc, "usage", "api_calls");
    expect(usage.billable).toBe("400000");
    expect(usage.amount).toBe("32000.00");
    expect(calc.total).toBe("152000.00");
    expect(calc.alreadyBilled).toBe("120000.00");
    expect(calc.delta).toBe("32000.00");
    expect(calc.action).toBe("invoice");

    await approveAll(t.app, calc);
    const res = await issue(t.app, c.id, calc.id, "annual-1");
    expect(res.statusCode, res.body).toBe(201);
    const doc = res.json();
    expect(doc.kind).toBe("invoice");
    expect(doc.number).toMatch(/^INV-\d{6}$/);
    expect(doc.amount).toBe("32000.00");
    expect(doc.subtotal).toBe("152000.00");
    expect(doc.alreadyBilled).toBe("120000.00");
    expect(doc.lines.map((l: any) => [l.kind, l.amount])).toEqual([
      ["platform_fee", "120000.00"],
      ["usage", "32000.00"],
    ]);
    const again = await get(t.app, `/v1/documents/${doc.id}`, "reader");
    expect(again.json()).toEqual(doc);
  });

  it("quarterly $20,000 minimum, $18,000 usage → commitment_shortfall $2,000.00, total $20,000.00", async () => {
    const c = await createContract(t.app, {
      customerId: "we-commit",
      name: "Quarterly minimum",
      currency: "USD",
      billingPeriod: "quarterly",
      startDate: "2026-01-01",
      terms: { commitment: { amount: "20000.00", scope: "period" }, meters: [meter("seats_hours", "1.00")] },
    });
    await ingest(t.app, events("we-commit", "seats_hours", "18000", "2026-02-10T08:00:00Z", 3));
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(calc, "usage", "seats_hours").amount).toBe("18000.00");
    expect(lineOf(calc, "commitment_shortfall").amount).toBe("2000.00");
    expect(calc.total).toBe("20000.00");
    expect(calc.action).toBe("invoice");
    await approveAll(t.app, calc);
    const res = await issue(t.app, c.id, calc.id);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().amount).toBe("20000.00");
  });

  it("prepaid credits: $8,000 January → $0.00 invoice drawing $8,000; late $1,200 → re-run draws $9,200; balance $110,800.00", async () => {
    const c = await createContract(t.app, {
      customerId: "we-credits",
      name: "Prepaid",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      endDate: "2026-12-31",
      terms: {
        meters: [meter("gb_processed", "1.00")],
        prepaidCredits: [{ id: "grant-2026", amount: "120000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
      },
    });
    await ingest(t.app, events("we-credits", "gb_processed", "8000", "2026-01-20T10:00:00Z", 4));
    const jan = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(jan, "usage").amount).toBe("8000.00");
    expect(lineOf(jan, "credit_applied").amount).toBe("-8000.00");
    expect(jan.total).toBe("0.00");
    expect(jan.action).toBe("invoice");
    const first = await issue(t.app, c.id, jan.id, "credits-jan-1");
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json().amount).toBe("0.00");
    expect(first.json().creditsApplied).toEqual([{ grantId: "grant-2026", amount: "8000.00" }]);

    // Balance after the first issue, as February's preview sees it.
    const feb1 = await get(t.app, `/v1/calculations/${(await preview(t.app, c.id, "2026-02-01T00:00:00Z")).id}`, "reader");
    expect(feb1.json().inputs.creditBalances).toEqual([{ grantId: "grant-2026", available: "112000" }]);

    // A late $1,200 of January usage.
    await ingest(t.app, events("we-credits", "gb_processed", "1200", "2026-01-28T10:00:00Z"));
    const rerun = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(rerun, "usage").amount).toBe("9200.00");
    expect(lineOf(rerun, "credit_applied").amount).toBe("-9200.00");
    expect(rerun.total).toBe("0.00");
    expect(rerun.delta).toBe("0.00");
    expect(rerun.action).toBe("invoice");
    expect(rerun.exceptions.map((e: any) => e.kind)).toContain("late_usage");
    const blocked = await issue(t.app, c.id, rerun.id);
    expect(blocked.statusCode).toBe(409);
    expect(blocked.json().code).toBe("blocking_exceptions");
    await approveAll(t.app, rerun);
    const second = await issue(t.app, c.id, rerun.id);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json().amount).toBe("0.00");
    expect(second.json().creditsApplied).toEqual([{ grantId: "grant-2026", amount: "9200.00" }]);
    expect(second.json().number).not.toBe(first.json().number);

    const feb2 = await get(t.app, `/v1/calculations/${(await preview(t.app, c.id, "2026-02-01T00:00:00Z")).id}`, "reader");
    expect(feb2.json().inputs.creditBalances).toEqual([{ grantId: "grant-2026", available: "110800" }]);
  });
});

describe("issuing", () => {
  async function invoiceable(customerId: string, extraTerms: Record<string, unknown> = {}, allowTrueDown = false) {
    const c = await createContract(t.app, {
      customerId,
      name: customerId,
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      allowTrueDown,
      terms: { meters: [meter("calls", "0.50")], ...extraTerms },
    });
    const evts = events(customerId, "calls", "1000", "2026-01-05T00:00:00Z", 2);
    await ingest(t.app, evts);
    return { c, evts };
  }

  it("50 concurrent issue requests for one calculation (same and different keys) yield exactly one document", async () => {
    const { c } = await invoiceable("concurrent-issue");
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => issue(t.app, c.id, calc.id, i % 2 === 0 ? "same-key" : `key-${i}`)),
    );
    const created = results.filter((r) => r.statusCode === 201);
    expect(created).toHaveLength(1);
    const docId = created[0]!.json().id;
    for (const r of results) {
      if (r.statusCode === 200) expect(r.json().id).toBe(docId); // same key replayed
      else if (r.statusCode !== 201) expect(r.json().code).toBe("conflict");
    }
    const docs = await t.db.pool.query("SELECT count(*)::int AS n FROM documents WHERE calculation_id = $1", [calc.id]);
    expect(docs.rows[0].n).toBe(1);
  });

  it("same Idempotency-Key with a different body → 409 idempotency_conflict", async () => {
    const { c } = await invoiceable("idem-conflict");
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect((await issue(t.app, c.id, calc.id, "k-1")).statusCode).toBe(201);
    const replay = await issue(t.app, c.id, calc.id, "k-1");
    expect(replay.statusCode).toBe(200);
    const other = await issue(t.app, c.id, "0196a0b0-0000-7000-8000-000000000000", "k-1");
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe("idempotency_conflict");
  });

  it("inputs changed since the preview → 409 stale_preview", async () => {
    const { c } = await invoiceable("stale");
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    await ingest(t.app, events("stale", "calls", "10", "2026-01-06T00:00:00Z"));
    const res = await issue(t.app, c.id, calc.id);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe("stale_preview");
  });

  it("materiality blocks until approved; reject keeps it blocked; every decision is audited", async () => {
    const { c } = await invoiceable("material", { materialityThreshold: "100.00", approvalOwner: "revops-lead" });
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    const m = calc.exceptions.find((e: any) => e.kind === "materiality");
    expect(m).toMatchObject({ blocking: true, status: "open", owner: "revops-lead" });
    expect((await issue(t.app, c.id, calc.id)).json().code).toBe("blocking_exceptions");
    const rejected = await post(t.app, `/v1/exceptions/${m.id}/resolve`, { decision: "reject", note: "amount disputed" }, "approver");
    expect(rejected.json()).toMatchObject({ status: "rejected", resolution: { decision: "reject", note: "amount disputed", actor: "approver-key" } });
    expect((await issue(t.app, c.id, calc.id)).json().code).toBe("blocking_exceptions");
    // Writers cannot approve their own work.
    expect((await post(t.app, `/v1/exceptions/${m.id}/resolve`, { decision: "approve", note: "x" }, "writer")).statusCode).toBe(403);
    await post(t.app, `/v1/exceptions/${m.id}/resolve`, { decision: "approve", note: "confirmed" }, "approver");
    expect((await issue(t.app, c.id, calc.id)).statusCode).toBe(201);
    const audit = await get(t.app, `/v1/audit?entityId=${m.id}`, "reader");
    expect(audit.json().data.map((e: any) => [e.action, e.actor, e.payload.note])).toEqual([
      ["exception.rejected", "approver-key", "amount disputed"],
      ["exception.approved", "approver-key", "confirmed"],
    ]);
    const open = await get(t.app, `/v1/exceptions?status=open&contractId=${c.id}`, "reader");
    expect(open.json().data).toEqual([]);
  });

  it("late usage after an invoice: the next preview shows the difference and issuing bills only the delta", async () => {
    const { c } = await invoiceable("late-invoice");
    const first = (await issue(t.app, c.id, (await preview(t.app, c.id, "2026-01-01T00:00:00Z")).id)).json();
    expect(first.amount).toBe("500.00");
    const late = await ingest(t.app, events("late-invoice", "calls", "300", "2026-01-30T23:59:59Z"));
    expect(late.accepted).toBe(1);
    const rerun = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(rerun).toMatchObject({ total: "650.00", alreadyBilled: "500.00", delta: "150.00", action: "invoice" });
    const lateException = rerun.exceptions.find((e: any) => e.kind === "late_usage");
    expect(lateException).toMatchObject({ blocking: true, status: "open", subject: first.id });
    // A second preview raises nothing new: the same exception, seen again.
    const again = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(again.exceptions.find((e: any) => e.kind === "late_usage").id).toBe(lateException.id);
    // The first re-run, read back later, still lists the exception it raised, with its current status.
    const stored = (await get(t.app, `/v1/calculations/${rerun.id}`, "reader")).json();
    expect(stored.exceptions.map((e: any) => e.id)).toEqual([lateException.id]);
    expect(stored.inputsHash).toBe(rerun.inputsHash);
    await approveAll(t.app, again);
    const second = await issue(t.app, c.id, again.id);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json()).toMatchObject({ kind: "invoice", subtotal: "650.00", alreadyBilled: "500.00", amount: "150.00" });
    expect(Number(second.json().number.slice(4))).toBe(Number(first.number.slice(4)) + 1); // gapless
  });

  it("nothing to bill → 409 nothing_to_issue", async () => {
    const c = await createContract(t.app, {
      customerId: "nothing",
      name: "nothing",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      terms: { meters: [meter("calls", "0.50")] },
    });
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    expect(calc.action).toBe("none");
    const res = await issue(t.app, c.id, calc.id);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe("nothing_to_issue");
  });

  it("voided usage after an invoice: a credit memo with allowTrueDown, over_billed without", async () => {
    for (const allow of [true, false]) {
      const customer = `true-down-${allow}`;
      const { c, evts } = await invoiceable(customer, {}, allow);
      const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
      expect((await issue(t.app, c.id, calc.id)).json().amount).toBe("500.00");
      const voided = await post(t.app, "/v1/usage/void", { customerId: customer, eventIds: [evts[1]!.eventId], reason: "duplicate meter reading" }, "writer");
      expect(voided.statusCode, voided.body).toBeLessThan(300);
      const again = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
      expect(again.delta).toBe("-250.00");
      expect(again.exceptions.map((e: any) => e.kind)).toContain("late_usage");
      if (allow) {
        expect(again.action).toBe("credit_memo");
        await approveAll(t.app, again);
        const cm = await issue(t.app, c.id, again.id);
        expect(cm.statusCode, cm.body).toBe(201);
        expect(cm.json()).toMatchObject({ kind: "credit_memo", amount: "250.00", subtotal: "250.00", alreadyBilled: "500.00" });
        expect(cm.json().number).toMatch(/^CM-\d{6}$/);
        const settled = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
        expect(settled).toMatchObject({ alreadyBilled: "250.00", delta: "0.00", action: "none" });
      } else {
        expect(again.action).toBe("none");
        expect(again.exceptions.map((e: any) => e.kind)).toContain("over_billed");
      }
    }
  });

  it("documents and their lines are immutable in PostgreSQL", async () => {
    const { c } = await invoiceable("immutable");
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    const doc = (await issue(t.app, c.id, calc.id)).json();
    for (const sql of [
      `UPDATE documents SET amount = 0 WHERE id = '${doc.id}'`,
      `DELETE FROM documents WHERE id = '${doc.id}'`,
      "TRUNCATE documents CASCADE",
      `UPDATE document_lines SET amount = 0 WHERE document_id = '${doc.id}'`,
      `DELETE FROM document_lines WHERE document_id = '${doc.id}'`,
      "TRUNCATE document_lines",
      "UPDATE credit_drawdowns SET amount = 0",
      "TRUNCATE audit_log",
      "DELETE FROM audit_log",
    ])
      await expect(t.db.pool.query(sql), sql).rejects.toThrow(/append-only/);
    expect((await get(t.app, `/v1/documents/${doc.id}`, "reader")).json().amount).toBe("500.00");
  });

  it("backup.csv lists every line with usage, included, rate and amount, and the totals", async () => {
    const c = await createContract(t.app, {
      customerId: "csv",
      name: "csv",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      terms: {
        platformFee: { amount: "99.00" },
        meters: [
          meter("calls", "0.50", "100"),
          { metric: "storage_gb", pricing: { model: "graduated", tiers: [{ upTo: "10", unitPrice: "2" }, { upTo: null, unitPrice: "1" }] } },
        ],
      },
    });
    await ingest(t.app, [...events("csv", "calls", "1000", "2026-01-05T00:00:00Z"), ...events("csv", "storage_gb", "25", "2026-01-05T00:00:00Z")]);
    const calc = await preview(t.app, c.id, "2026-01-01T00:00:00Z");
    const doc = (await issue(t.app, c.id, calc.id)).json();
    const res = await get(t.app, `/v1/documents/${doc.id}/backup.csv`, "reader");
    expect(res.statusCode).toBe(200);
    expect(String(res.headers["content-type"])).toMatch(/^text\/csv/);
    const rows = res.body.trim().split("\r\n");
    expect(rows[0]).toContain('document,line,kind,metric');
    expect(rows.find((r) => r.includes('"calls"'))).toContain('"1000","100","900","per_unit","0.5"');
    expect(rows.find((r) => r.includes('"storage_gb"'))).toMatch(/"graduated","0-10 @ 2; 10-∞ @ 1"/);
    expect(rows.at(-1)).toContain(`"amount_due"`);
    expect(rows.at(-1)).toContain(`"${doc.amount}"`);
  });
});

describe("audit log", () => {
  it("records every kind of change, verifies, and names the first tampered entry", async () => {
    const ok = await get(t.app, "/v1/audit/verify", "reader");
    expect(ok.json()).toMatchObject({ ok: true, firstBrokenId: null });
    expect(ok.json().entries).toBeGreaterThan(10);
    const actions = new Set((await t.db.pool.query("SELECT DISTINCT action FROM audit_log")).rows.map((r) => r.action));
    for (const a of ["contract.created", "external_billing.recorded", "calculation.created", "exception.approved", "exception.rejected", "document.issued"])
      expect(actions, a).toContain(a);
    expect([...actions].some((a) => a.startsWith("usage."))).toBe(true);

    const victim = (await t.db.pool.query("SELECT id::text AS id FROM audit_log ORDER BY seq OFFSET 5 LIMIT 1")).rows[0].id;
    // What a superuser could do behind the service's back: disable the guard, edit a row, re-enable it.
    const client = await t.db.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
      await client.query(`UPDATE audit_log SET payload = jsonb_set(payload, '{tampered}', 'true') WHERE id = $1`, [victim]);
      await client.query("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const broken = await get(t.app, "/v1/audit/verify", "reader");
    expect(broken.json()).toMatchObject({ ok: false, firstBrokenId: victim });
  });
});
