// True-ups end to end over HTTP with a real PostgreSQL: the worked examples of docs/rating.md, exceptions and
// approvals, exactly-once issuing, late usage and re-rating.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { fixedClock } from "../../src/clock.js";
import { expectProblem, useTestApp } from "../helpers/app.js";
import { events, lineOf, meter } from "../helpers/factories.js";

const t = useTestApp();
// The annual 2026 period can only be issued once it has ended (before that → period_open): mid-January 2027.
const afterYearEnd = useTestApp({}, { clock: fixedClock("2027-01-15T00:00:00Z") });

describe("worked examples, end to end", () => {
  it("annual: platform fee billed externally, 1,400,000 calls with 1,000,000 included at $0.08 → invoice $32,000.00", async () => {
    const c = await afterYearEnd.createContract({
      customerId: "we-annual",
      name: "Annual API",
      currency: "USD",
      billingPeriod: "annual",
      startDate: "2026-01-01",
      endDate: "2026-12-31",
      terms: { platformFee: { amount: "120000.00" }, meters: [meter("api_calls", "0.08", "1000000", "unit")] },
    });
    const billed = await afterYearEnd.post(`/v1/contracts/${c.id}/external-billings`, {
      periodStart: "2026-01-01T00:00:00Z",
      periodEnd: "2027-01-01T00:00:00Z",
      amount: "120000.00",
      reference: "NETSUITE-INV-8812",
    }, "writer");
    expect(billed.statusCode, billed.body).toBe(201);
    await afterYearEnd.ingest(events("we-annual", "api_calls", "1400000", "2026-03-15T12:00:00Z", 14));

    const calc = await afterYearEnd.preview(c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(calc, "platform_fee").amount).toBe("120000.00");
    const usage = lineOf(calc, "usage", "api_calls");
    expect(usage.billable).toBe("400000");
    expect(usage.amount).toBe("32000.00");
    expect(calc.total).toBe("152000.00");
    expect(calc.alreadyBilled).toBe("120000.00");
    expect(calc.delta).toBe("32000.00");
    expect(calc.action).toBe("invoice");

    await afterYearEnd.approveAll(calc);
    const res = await afterYearEnd.issue(c.id, calc.id, "annual-1");
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
    const again = await afterYearEnd.get(`/v1/documents/${doc.id}`, "reader");
    expect(again.json()).toEqual(doc);
  });

  it("quarterly $20,000 minimum, $18,000 usage → commitment_shortfall $2,000.00, total $20,000.00", async () => {
    const c = await t.createContract({
      customerId: "we-commit",
      name: "Quarterly minimum",
      currency: "USD",
      billingPeriod: "quarterly",
      startDate: "2026-01-01",
      terms: { commitment: { amount: "20000.00", scope: "period" }, meters: [meter("seats_hours", "1.00", "0", "unit")] },
    });
    await t.ingest(events("we-commit", "seats_hours", "18000", "2026-02-10T08:00:00Z", 3));
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(calc, "usage", "seats_hours").amount).toBe("18000.00");
    expect(lineOf(calc, "commitment_shortfall").amount).toBe("2000.00");
    expect(calc.total).toBe("20000.00");
    expect(calc.action).toBe("invoice");
    await t.approveAll(calc);
    const res = await t.issue(c.id, calc.id);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().amount).toBe("20000.00");
  });

  it("prepaid credits: $8,000 January → $0.00 invoice drawing $8,000; late $1,200 → re-run draws $9,200; balance $110,800.00", async () => {
    const c = await t.createContract({
      customerId: "we-credits",
      name: "Prepaid",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      endDate: "2026-12-31",
      terms: {
        meters: [meter("gb_processed", "1.00", "0", "unit")],
        prepaidCredits: [{ id: "grant-2026", amount: "120000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" }],
      },
    });
    await t.ingest(events("we-credits", "gb_processed", "8000", "2026-01-20T10:00:00Z", 4));
    const jan = await t.preview(c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(jan, "usage").amount).toBe("8000.00");
    expect(lineOf(jan, "credit_applied").amount).toBe("-8000.00");
    expect(jan.total).toBe("0.00");
    expect(jan.action).toBe("invoice");
    const first = await t.issue(c.id, jan.id, "credits-jan-1");
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json().amount).toBe("0.00");
    expect(first.json().creditsApplied).toEqual([{ grantId: "grant-2026", amount: "8000.00", balanceAfter: "112000.00" }]);

    // Balance after the first issue, as February's preview sees it.
    const feb1 = await t.get(`/v1/calculations/${(await t.preview(c.id, "2026-02-01T00:00:00Z")).id}`, "reader");
    expect(feb1.json().inputs.creditBalances).toEqual([{ grantId: "grant-2026", available: "112000" }]);

    // A late $1,200 of January usage.
    await t.ingest(events("we-credits", "gb_processed", "1200", "2026-01-28T10:00:00Z"));
    const rerun = await t.preview(c.id, "2026-01-01T00:00:00Z");
    expect(lineOf(rerun, "usage").amount).toBe("9200.00");
    expect(lineOf(rerun, "credit_applied").amount).toBe("-9200.00");
    expect(rerun.total).toBe("0.00");
    expect(rerun.delta).toBe("0.00");
    expect(rerun.action).toBe("invoice");
    expect(rerun.exceptions.map((e: any) => e.kind)).toContain("late_usage");
    const blocked = await t.issue(c.id, rerun.id);
    expect(blocked.statusCode).toBe(409);
    expect(blocked.json().code).toBe("blocking_exceptions");
    await t.approveAll(rerun);
    const second = await t.issue(c.id, rerun.id);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json().amount).toBe("0.00");
    expect(second.json().creditsApplied).toEqual([{ grantId: "grant-2026", amount: "9200.00", balanceAfter: "110800.00" }]);
    expect(second.json().number).not.toBe(first.json().number);

    const feb2 = await t.get(`/v1/calculations/${(await t.preview(c.id, "2026-02-01T00:00:00Z")).id}`, "reader");
    expect(feb2.json().inputs.creditBalances).toEqual([{ grantId: "grant-2026", available: "110800" }]);
  });
});

describe("issuing", () => {
  async function invoiceable(customerId: string, extraTerms: Record<string, unknown> = {}, allowTrueDown = false) {
    const c = await t.createContract({
      customerId,
      name: customerId,
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      allowTrueDown,
      terms: { meters: [meter("calls", "0.50", "0", "unit")], ...extraTerms },
    });
    const evts = events(customerId, "calls", "1000", "2026-01-05T00:00:00Z", 2);
    await t.ingest(evts);
    return { c, evts };
  }

  it("50 concurrent issue requests for one calculation (same and different keys) yield exactly one document", async () => {
    const { c } = await invoiceable("concurrent-issue");
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => t.issue(c.id, calc.id, i % 2 === 0 ? "same-key" : `key-${i}`)),
    );
    const created = results.filter((r) => r.statusCode === 201 && r.headers["idempotent-replayed"] === undefined);
    expect(created).toHaveLength(1);
    const docId = created[0]!.json().id;
    for (const r of results) {
      if (r.headers["idempotent-replayed"] === "true") expect([r.statusCode, r.json().id]).toEqual([201, docId]); // same key replayed
      else if (r !== created[0]) expect(r.json().code).toBe("conflict");
    }
    const docs = await t.db.pool.query("SELECT count(*)::int AS n FROM documents WHERE calculation_id = $1", [calc.id]);
    expect(docs.rows[0].n).toBe(1);
  });

  it("same Idempotency-Key with a different body → 409 idempotency_conflict", async () => {
    const { c } = await invoiceable("idem-conflict");
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    const first = await t.issue(c.id, calc.id, "k-1");
    expect(first.statusCode).toBe(201);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    // A replay answers as the first time: the same status and body, marked as a replay.
    const replay = await t.issue(c.id, calc.id, "k-1");
    expect(replay.statusCode).toBe(201);
    expect(replay.headers["idempotent-replayed"]).toBe("true");
    expect(replay.json()).toEqual(first.json());
    const other = await t.issue(c.id, "0196a0b0-0000-7000-8000-000000000000", "k-1");
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe("idempotency_conflict");
  });

  it("a period that has not ended → previewed as an estimate (periodClosed false), issuing → 409 period_open", async () => {
    const c = await t.createContract({
      customerId: "open-period",
      name: "open-period",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      terms: { meters: [meter("calls", "0.50", "0", "unit")] },
    });
    await t.ingest([...events("open-period", "calls", "100", "2026-10-10T00:00:00Z"), ...events("open-period", "calls", "40", "2026-11-10T00:00:00Z")]);
    const closed = await t.preview(c.id, "2026-10-01T00:00:00Z");
    expect(closed).toMatchObject({ periodClosed: true, total: "50.00" });
    // November 2026 is still running at the test clock's 2026-11-15.
    const running = await t.preview(c.id, "2026-11-01T00:00:00Z");
    expect(running).toMatchObject({ periodClosed: false, total: "20.00", action: "invoice" });
    expect((await t.get(`/v1/calculations/${running.id}`, "reader")).json().periodClosed).toBe(false);
    const refused = expectProblem(await t.issue(c.id, running.id, "open-1"), 409, "period_open");
    expect(refused.period).toEqual({ start: "2026-11-01T00:00:00.000Z", end: "2026-12-01T00:00:00.000Z" });
    const docs = await t.db.pool.query("SELECT count(*)::int AS n FROM documents WHERE contract_id = $1", [c.id]);
    expect(docs.rows[0].n).toBe(0);
    expect((await t.issue(c.id, closed.id)).statusCode).toBe(201);
  });

  it("inputs changed since the preview → 409 stale_preview", async () => {
    const { c } = await invoiceable("stale");
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    await t.ingest(events("stale", "calls", "10", "2026-01-06T00:00:00Z"));
    const res = await t.issue(c.id, calc.id);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe("stale_preview");
  });

  it("materiality blocks until approved; reject keeps it blocked; every decision is audited", async () => {
    const { c } = await invoiceable("material", { materialityThreshold: "100.00", approvalOwner: "revops-lead" });
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    const m = calc.exceptions.find((e: any) => e.kind === "materiality");
    expect(m).toMatchObject({ blocking: true, status: "open", owner: "revops-lead" });
    expect((await t.issue(c.id, calc.id)).json().code).toBe("blocking_exceptions");
    const rejected = await t.post(`/v1/exceptions/${m.id}/resolve`, { decision: "reject", note: "amount disputed" }, "approver");
    expect(rejected.json()).toMatchObject({ status: "rejected", resolution: { decision: "reject", note: "amount disputed", actor: "approver-key" } });
    expect((await t.issue(c.id, calc.id)).json().code).toBe("blocking_exceptions");
    // Writers cannot approve their own work.
    expect((await t.post(`/v1/exceptions/${m.id}/resolve`, { decision: "approve", note: "x" }, "writer")).statusCode).toBe(403);
    await t.post(`/v1/exceptions/${m.id}/resolve`, { decision: "approve", note: "confirmed" }, "approver");
    expect((await t.issue(c.id, calc.id)).statusCode).toBe(201);
    const audit = await t.get(`/v1/audit?entityId=${m.id}`, "reader");
    expect(audit.json().data.map((e: any) => [e.action, e.actor, e.payload.note])).toEqual([
      ["exception.rejected", "approver-key", "amount disputed"],
      ["exception.approved", "approver-key", "confirmed"],
    ]);
    const open = await t.get(`/v1/exceptions?status=open&contractId=${c.id}`, "reader");
    expect(open.json().data).toEqual([]);
  });

  it("late usage after an invoice: the next preview shows the difference and issuing bills only the delta", async () => {
    const { c } = await invoiceable("late-invoice");
    const first = (await t.issue(c.id, (await t.preview(c.id, "2026-01-01T00:00:00Z")).id)).json();
    expect(first.amount).toBe("500.00");
    const late = await t.ingest(events("late-invoice", "calls", "300", "2026-01-30T23:59:59Z"));
    expect(late.accepted).toBe(1);
    const rerun = await t.preview(c.id, "2026-01-01T00:00:00Z");
    expect(rerun).toMatchObject({ total: "650.00", alreadyBilled: "500.00", delta: "150.00", action: "invoice" });
    const lateException = rerun.exceptions.find((e: any) => e.kind === "late_usage");
    expect(lateException).toMatchObject({ blocking: true, status: "open", subject: first.id });
    // A second preview raises nothing new: the same exception, seen again.
    const again = await t.preview(c.id, "2026-01-01T00:00:00Z");
    expect(again.exceptions.find((e: any) => e.kind === "late_usage").id).toBe(lateException.id);
    // The first re-run, read back later, still lists the exception it raised, with its current status.
    const stored = (await t.get(`/v1/calculations/${rerun.id}`, "reader")).json();
    expect(stored.exceptions.map((e: any) => e.id)).toEqual([lateException.id]);
    expect(stored.inputsHash).toBe(rerun.inputsHash);
    await t.approveAll(again);
    const second = await t.issue(c.id, again.id);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json()).toMatchObject({ kind: "invoice", subtotal: "650.00", alreadyBilled: "500.00", amount: "150.00" });
    expect(Number(second.json().number.slice(4))).toBe(Number(first.number.slice(4)) + 1); // gapless
  });

  it("nothing to bill → 409 nothing_to_issue", async () => {
    const c = await t.createContract({
      customerId: "nothing",
      name: "nothing",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      terms: { meters: [meter("calls", "0.50", "0", "unit")] },
    });
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    expect(calc.action).toBe("none");
    const res = await t.issue(c.id, calc.id);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe("nothing_to_issue");
  });

  it("voided usage after an invoice: a credit memo with allowTrueDown, over_billed without", async () => {
    for (const allow of [true, false]) {
      const customer = `true-down-${allow}`;
      const { c, evts } = await invoiceable(customer, {}, allow);
      const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
      expect((await t.issue(c.id, calc.id)).json().amount).toBe("500.00");
      const voided = await t.post("/v1/usage/void", { customerId: customer, eventIds: [evts[1]!.eventId], reason: "duplicate meter reading" }, "writer");
      expect(voided.statusCode, voided.body).toBeLessThan(300);
      const again = await t.preview(c.id, "2026-01-01T00:00:00Z");
      expect(again.delta).toBe("-250.00");
      expect(again.exceptions.map((e: any) => e.kind)).toContain("late_usage");
      if (allow) {
        expect(again.action).toBe("credit_memo");
        await t.approveAll(again);
        const cm = await t.issue(c.id, again.id);
        expect(cm.statusCode, cm.body).toBe(201);
        expect(cm.json()).toMatchObject({ kind: "credit_memo", amount: "250.00", subtotal: "250.00", alreadyBilled: "500.00" });
        expect(cm.json().number).toMatch(/^CM-\d{6}$/);
        const settled = await t.preview(c.id, "2026-01-01T00:00:00Z");
        expect(settled).toMatchObject({ alreadyBilled: "250.00", delta: "0.00", action: "none" });
      } else {
        expect(again.action).toBe("none");
        expect(again.exceptions.map((e: any) => e.kind)).toContain("over_billed");
      }
    }
  });

  it("documents and their lines are immutable in PostgreSQL", async () => {
    const { c } = await invoiceable("immutable");
    const calc = await t.preview(c.id, "2026-01-01T00:00:00Z");
    const doc = (await t.issue(c.id, calc.id)).json();
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
    ]) {
      // As the owner, whose privileges would allow it: the triggers refuse. (The runtime role is refused by
      // its grants already: test/db/least-privilege.test.ts.)
      const owner = new pg.Client({ connectionString: t.url });
      await owner.connect();
      await expect(owner.query(sql), sql).rejects.toThrow(/append-only/);
      await owner.end();
    }
    expect((await t.get(`/v1/documents/${doc.id}`, "reader")).json().amount).toBe("500.00");
  });

  it("backup.csv: customer, contract, number and local period first; JSON column names; already-billed rows cite their sources", async () => {
    const c = await t.createContract({
      customerId: "csv",
      name: "csv",
      currency: "USD",
      timezone: "America/New_York",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      terms: {
        platformFee: { amount: "99.00" },
        meters: [
          meter("calls", "0.50", "100", "unit"),
          { metric: "storage_gb", pricing: { model: "graduated", tiers: [{ upTo: "10", unitPrice: "2" }, { upTo: null, unitPrice: "1" }] } },
        ],
      },
    });
    const january = { periodStart: "2026-01-01T05:00:00Z", periodEnd: "2026-02-01T05:00:00Z" }; // local midnights in New York
    expect((await t.post(`/v1/contracts/${c.id}/external-billings`, { ...january, amount: "99.00", reference: "ERP-99" }, "writer")).statusCode).toBe(201);
    await t.ingest([...events("csv", "calls", "1000", "2026-01-05T00:00:00Z"), ...events("csv", "storage_gb", "25", "2026-01-05T00:00:00Z")]);
    const first = (await t.issue(c.id, (await t.preview(c.id, january.periodStart)).id)).json();
    expect(first.amount).toBe("485.00"); // 99 + 900 × 0.50 + (10 × 2 + 15 × 1) − 99 billed by the ERP
    // Late usage: a second invoice for the delta, whose backup cites both earlier billings.
    await t.ingest(events("csv", "calls", "10", "2026-01-20T00:00:00Z"));
    const rerun = await t.preview(c.id, january.periodStart);
    await t.approveAll(rerun);
    const doc = (await t.issue(c.id, rerun.id)).json();
    expect(doc.amount).toBe("5.00");

    const res = await t.get(`/v1/documents/${doc.id}/backup.csv`, "reader");
    expect(res.statusCode).toBe(200);
    expect(String(res.headers["content-type"])).toMatch(/^text\/csv/);
    const rows = res.body.trimEnd().split("\r\n").map((r) => (r === "" ? [] : r.slice(1, -1).split('","')));
    expect(rows.slice(0, 9)).toEqual([
      ["customerId", "csv"],
      ["contractId", c.id],
      ["number", doc.number],
      ["kind", "invoice"],
      ["period", "2026-01-01 to 2026-01-31"],
      ["timezone", "America/New_York"],
      ["currency", "USD"],
      ["issuedAt", doc.issuedAt],
      [],
    ]);
    const header = rows[9]!;
    expect(header).toEqual([
      "lineNo", "kind", "meterId", "metric", "aggregation", "filter", "segment.from", "segment.to", "usage", "included", "billable", "pricingModel", "unitPrice", "tiers",
      "packageSize", "packagePrice", "gross", "discount", "amount", "description",
    ]);
    const byName = (row: string[]) => Object.fromEntries(header.map((h, i) => [h, row[i]]));
    const lines = rows.slice(10).map(byName);
    expect(lines.find((l) => l.metric === "calls")).toMatchObject({ usage: "1010", included: "100", billable: "910", pricingModel: "per_unit", unitPrice: "0.5", amount: "455.00" });
    expect(lines.find((l) => l.metric === "storage_gb")).toMatchObject({ pricingModel: "graduated", tiers: "0-10 @ 2; 10-∞ @ 1", amount: "35.00" });
    expect(lines.find((l) => l.kind === "platform_fee")!.description).toBe("Platform fee 99.00 (v1, Jan 1–Jan 31, 2026)");
    const totals = lines.filter((l) => l.lineNo === "").map((l) => [l.kind, l.amount, l.description]);
    expect(totals).toEqual([
      ["subtotal", "589.00", "the period's total"],
      ["alreadyBilled", "99.00", "ERP-99 (external billing)"],
      ["alreadyBilled", "485.00", `${first.number} (invoice)`],
      ["amount", "5.00", "due"],
    ]);

    // The full export adds the engine's internals.
    const full = await t.get(`/v1/documents/${doc.id}/backup.csv?detail=full`, "reader");
    const fullHeader = full.body.split("\r\n")[9]!.slice(1, -1).split('","');
    for (const internal of ["segment.version", "fraction", "capped", "unroundedAmount"]) {
      expect(fullHeader).toContain(internal);
      expect(header).not.toContain(internal);
    }
    expect((await t.get(`/v1/documents/${doc.id}/backup.csv?detail=everything`, "reader")).statusCode).toBe(400);
  });

  it("a document shows each grant's balance after it", async () => {
    const c = await t.createContract({
      customerId: "balances",
      name: "balances",
      currency: "USD",
      billingPeriod: "monthly",
      startDate: "2026-01-01",
      terms: {
        meters: [meter("calls", "1.00", "0", "unit")],
        prepaidCredits: [
          { id: "early", amount: "100.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2026-06-01T00:00:00Z" },
          { id: "late", amount: "1000.00", grantedAt: "2026-01-01T00:00:00Z", expiresAt: "2027-01-01T00:00:00Z" },
        ],
      },
    });
    await t.ingest(events("balances", "calls", "250", "2026-01-05T00:00:00Z"));
    const doc = (await t.issue(c.id, (await t.preview(c.id, "2026-01-01T00:00:00Z")).id)).json();
    expect(doc.creditsApplied).toEqual([
      { grantId: "early", amount: "100.00", balanceAfter: "0.00" },
      { grantId: "late", amount: "150.00", balanceAfter: "850.00" },
    ]);
    expect((await t.get(`/v1/documents/${doc.id}`, "reader")).json().creditsApplied).toEqual(doc.creditsApplied);
    const feb = (await t.get(`/v1/calculations/${(await t.preview(c.id, "2026-02-01T00:00:00Z")).id}`, "reader")).json();
    expect(feb.inputs.creditBalances).toEqual([
      { grantId: "early", available: "0" },
      { grantId: "late", available: "850" },
    ]);
  });
});

describe("audit log", () => {
  it("records every kind of change, verifies, and names the first tampered entry", async () => {
    const billed = await t.post(`/v1/contracts/${(await t.get("/v1/contracts?limit=1", "reader")).json().data[0].id}/external-billings`, {
      periodStart: "2026-01-01T00:00:00Z",
      periodEnd: "2026-02-01T00:00:00Z",
      amount: "1.00",
      reference: "ERP-AUDIT-1",
    }, "writer");
    expect(billed.statusCode, billed.body).toBe(201);
    const ok = await t.get("/v1/audit/verify", "reader");
    expect(ok.json()).toMatchObject({ ok: true, firstBrokenId: null });
    expect(ok.json().entries).toBeGreaterThan(10);
    const actions = new Set((await t.db.pool.query("SELECT DISTINCT action FROM audit_log")).rows.map((r) => r.action));
    for (const a of ["contract.created", "external_billing.recorded", "calculation.created", "exception.approved", "exception.rejected", "document.issued"])
      expect(actions, a).toContain(a);
    expect([...actions].some((a) => a.startsWith("usage."))).toBe(true);

    const victim = (await t.db.pool.query("SELECT id::text AS id FROM audit_log ORDER BY seq OFFSET 5 LIMIT 1")).rows[0].id;
    // What the owner or a superuser could do behind the service's back: disable the guard, edit a row, re-enable it.
    const client = new pg.Client({ connectionString: t.url });
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only");
      await client.query(`UPDATE audit_log SET payload = jsonb_set(payload, '{tampered}', 'true') WHERE id = $1`, [victim]);
      await client.query("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only");
      await client.query("COMMIT");
    } finally {
      await client.end();
    }
    const broken = await t.get("/v1/audit/verify", "reader");
    expect(broken.json()).toMatchObject({ ok: false, firstBrokenId: victim });
  });
});
