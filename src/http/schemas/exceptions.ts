// Schemas of the exception routes.
import { z } from "zod";
import { EXCEPTION_KINDS, type ExceptionKind } from "../../domain/exception-kinds.js";
import { Id, Period, page } from "./common.js";

export const Exception = z.object({
  id: Id,
  kind: z.enum(Object.keys(EXCEPTION_KINDS) as [ExceptionKind, ...ExceptionKind[]]),
  blocking: z.boolean(),
  status: z.enum(["open", "approved", "rejected"]),
  contractId: Id.nullable(),
  customerId: z.string().nullable(),
  period: Period.nullable(),
  subject: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()),
  owner: z.string().nullable().describe("The contract's approvalOwner, where set"),
  calculationId: Id.nullable(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  resolution: z.object({ decision: z.string(), note: z.string().nullable(), actor: z.string(), at: z.string() }).nullable(),
});

export const ExceptionPage = page(Exception);

export const ResolveBody = z
  .object({ decision: z.enum(["approve", "reject"]), note: z.string().min(1).max(2000) })
  .strict();
