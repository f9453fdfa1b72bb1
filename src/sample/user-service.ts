import { randomInt } from "node:crypto";
import { create, type Message } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { hopsOf } from "../dispatch/hop.js";
import { type Details, DetailsSchema, ListDetailsSchema, TextQueryMethod } from "../../gen/zitadel/object/v2/object_pb.js";
import type { SetHumanEmail } from "../../gen/zitadel/user/v2/email_pb.js";
import type { IDPLink } from "../../gen/zitadel/user/v2/idp_pb.js";
import type { SetHumanPhone } from "../../gen/zitadel/user/v2/phone_pb.js";
import { type SearchQuery, Type, UserFieldName } from "../../gen/zitadel/user/v2/query_pb.js";
import {
  AddHumanUserResponseSchema,
  CreateUserResponseSchema,
  DeleteUserResponseSchema,
  GetUserByIDResponseSchema,
  ListUsersResponseSchema,
  UpdateHumanUserResponseSchema,
  type UserService,
  WatchUsersResponseSchema,
} from "../../gen/zitadel/user/v2/user_service_pb.js";
import {
  Gender,
  HumanUserSchema,
  type SetHumanProfile,
  type User,
  UserSchema,
  UserState,
} from "../../gen/zitadel/user/v2/user_pb.js";
import { callerContextKey } from "../caller-context.js";
import { newId } from "../id.js";
import { createMemoryUserStore, type SampleUserStore } from "./user-store.js";

/**
 * SampleUser is a user of the sample UserService: the user as GetUserByID
 * returns it, and its metadata (which ZITADEL's User message does not carry).
 */
export interface SampleUser {
  readonly user: User;
  /** Metadata by key. */
  readonly metadata: Map<string, Uint8Array>;
}

/**
 * UserEvent is a state change of the sample UserService, as ZITADEL's event
 * store would record it.
 */
export interface UserEvent {
  readonly aggregateID: string;
  readonly aggregateType: "user";
  readonly resourceOwner: string;
  /** The instance of the change: the caller's (CallerContext.instanceID), "" when unknown. */
  readonly instanceID: string;
  /** "user.human.added", "user.human.changed" or "user.removed". */
  readonly eventType: string;
  readonly sequence: number;
  readonly createdAt: Date;
  /** The user who made the change, "" when unknown. */
  readonly creator: string;
  /** The event's data; undefined for events without (user.removed), which ZITADEL sends without event_payload. */
  readonly payload: Record<string, unknown> | undefined;
  /** The Actions-Hop count of the request that made the change (hopsOf), default 0 (a client's); see ActionEvent.hops. */
  readonly hops?: number;
}

/**
 * userEventTypes are the event types the sample UserService emits.
 */
export const userEventTypes: readonly string[] = ["user.human.added", "user.human.changed", "user.removed"];

/**
 * UserServiceOptions configures createUserService.
 */
export interface UserServiceOptions {
  /**
   * onEvent receives every state change after it happened; awaited before the
   * RPC replies, so a durable event queue can persist the event first.
   * Default nothing. Only used with the default `users`: a store given in
   * `users` publishes the events itself.
   */
  readonly onEvent?: (event: UserEvent) => void | Promise<void>;
  /** Organization of users added without one, default "sample-org". */
  readonly defaultOrgId?: string;
  /**
   * Where the users live, default createMemoryUserStore({ onEvent }). Share
   * it to read users elsewhere, as the sample's userinfo endpoint does.
   */
  readonly users?: SampleUserStore;
}

/** NewHuman is what AddHumanUser and CreateUser have in common. */
interface NewHuman {
  readonly userId: string | undefined;
  readonly username: string | undefined;
  /** The resource owner. */
  readonly org: string;
  readonly profile: SetHumanProfile | undefined;
  readonly email: SetHumanEmail | undefined;
  readonly phone: SetHumanPhone | undefined;
  readonly metadata: readonly { key: string; value: Uint8Array }[];
}

/** NotImplemented lists the fields of a request that the sample does not implement. */
interface NotImplemented {
  readonly passwordType?: { readonly case: string | undefined };
  readonly idpLinks?: readonly IDPLink[];
  readonly totpSecret?: string;
  readonly email?: SetHumanEmail;
  readonly phone?: SetHumanPhone;
}

/**
 * createUserService returns an in-memory implementation of the sample
 * zitadel.user.v2.UserService, with ZITADEL's messages:
 *
 * - AddHumanUser and CreateUser create human users the same way and emit the
 *   same "user.human.added" event (its payload as ZITADEL's: userName,
 *   firstName, lastName, nickName, displayName, preferredLanguage, gender,
 *   email, phone). The organization is AddHumanUser's `organization.org_id`
 *   (else the caller's, else defaultOrgId) or CreateUser's required
 *   `organization_id`.
 * - Fields the sample does not implement are answered with Code.Unimplemented
 *   naming the field: passwords, hashed passwords, IDP links, TOTP secrets,
 *   sending email or SMS codes (`send_code`), `organization.org_domain`, and
 *   machine users. Fields unknown to the sample's protos (sent by a newer
 *   client) are answered with Code.InvalidArgument. Nothing is dropped silently.
 * - ListUsers evaluates all of ZITADEL's user queries and sorting columns.
 */
export function createUserService(options: UserServiceOptions = {}): ServiceImpl<typeof UserService> {
  const users: SampleUserStore = options.users ?? createMemoryUserStore({ onEvent: options.onEvent });
  const defaultOrg = options.defaultOrgId ?? "sample-org";

  const details = (sequence: bigint, owner: string, created: Date, changed: Date): Details =>
    create(DetailsSchema, {
      sequence,
      changeDate: timestampFromDate(changed),
      creationDate: timestampFromDate(created),
      resourceOwner: owner,
    });
  /** eventOf returns the event of a change of `user`. */
  const eventOf = (user: User, eventType: string, ctx: HandlerContext, payload: Record<string, unknown> | undefined): UserEvent => ({
    aggregateID: user.userId,
    aggregateType: "user",
    resourceOwner: user.details?.resourceOwner ?? "",
    instanceID: ctx.values.get(callerContextKey).instanceID ?? "",
    eventType,
    sequence: Number(user.details?.sequence ?? 0n),
    createdAt: user.details?.changeDate ? timestampDate(user.details.changeDate) : new Date(),
    creator: ctx.values.get(callerContextKey).userID ?? "",
    payload,
    hops: hopsOf(ctx.requestHeader),
  });
  const get = async (userId: string): Promise<SampleUser> => {
    if (userId === "") throw new ConnectError("user_id must not be empty", Code.InvalidArgument);
    const user = await users.get(userId);
    if (user === undefined) throw new ConnectError(`user "${userId}" not found`, Code.NotFound);
    return user;
  };

  /** addHuman validates and stores a new human user, emits "user.human.added" and returns it with its codes. */
  const addHuman = async (req: NewHuman, ctx: HandlerContext, prefix: string) => {
    const profile = checkProfile(req.profile, `${prefix}profile`);
    const email = checkEmail(req.email, `${prefix}email`);
    if (email === undefined) throw invalid(`${prefix}email.email must not be empty`);
    const phone = checkPhone(req.phone, `${prefix}phone`);
    const userId = req.userId ?? newId();
    if (userId === "" || userId.length > 200) throw invalid("user_id must have 1 to 200 characters");
    const username = req.username ?? email;
    if (username === "" || username.length > 200) throw invalid("username must have 1 to 200 characters");
    const metadata = new Map<string, Uint8Array>();
    req.metadata.forEach((m, i) => {
      if (m.key === "" || m.key.length > 200) throw invalid(`${prefix}metadata[${i}].key must have 1 to 200 characters`);
      metadata.set(m.key, m.value);
    });
    const now = new Date();
    const user = create(UserSchema, {
      userId,
      username,
      state: UserState.ACTIVE,
      loginNames: [username],
      preferredLoginName: username,
      details: details(1n, req.org, now, now),
      type: {
        case: "human",
        value: create(HumanUserSchema, {
          profile: storedProfile(profile),
          email: { email, isVerified: req.email?.verification.case === "isVerified" && req.email.verification.value },
          phone: { phone: phone ?? "", isVerified: phone !== undefined && req.phone?.verification.case === "isVerified" && req.phone.verification.value },
        }),
      },
    });
    const stored = storedProfile(profile);
    // ZITADEL's HumanAddedEvent: empty strings and an unspecified gender are left out,
    // the preferred language is always there ("und" when unset). The store takes the user
    // and its event together: both are kept, or neither.
    await users.add({ user, metadata }, eventOf(user, "user.human.added", ctx, omitEmpty({
      userName: username,
      firstName: stored.givenName,
      lastName: stored.familyName,
      nickName: stored.nickName,
      displayName: stored.displayName,
      preferredLanguage: stored.preferredLanguage,
      gender: stored.gender === Gender.UNSPECIFIED ? undefined : stored.gender,
      email,
      phone,
    })));
    return { user, emailCode: verificationCode(req.email), phoneCode: verificationCode(req.phone) };
  };

  return {
    async addHumanUser(req, ctx) {
      rejectUnknownFields(req);
      rejectNotImplemented(req, "");
      let org: string;
      switch (req.organization?.org.case) {
        case "orgId":
          if (req.organization.org.value === "" || req.organization.org.value.length > 200) {
            throw invalid("organization.org_id must have 1 to 200 characters");
          }
          org = req.organization.org.value;
          break;
        case "orgDomain":
          throw unimplemented("organization.org_domain", "the sample's organizations have no domains, use organization.org_id");
        default:
          org = ctx.values.get(callerContextKey).orgID || defaultOrg;
      }
      const { user, emailCode, phoneCode } = await addHuman(
        { userId: req.userId, username: req.username, org, profile: req.profile, email: req.email, phone: req.phone, metadata: req.metadata },
        ctx,
        "",
      );
      return create(AddHumanUserResponseSchema, { userId: user.userId, details: user.details, emailCode, phoneCode });
    },

    async createUser(req, ctx) {
      rejectUnknownFields(req);
      if (req.organizationId === "" || req.organizationId.length > 200) {
        throw invalid("organization_id must have 1 to 200 characters");
      }
      switch (req.userType.case) {
        case "human": {
          const human = req.userType.value;
          rejectNotImplemented(human, "human.");
          const { user, emailCode, phoneCode } = await addHuman(
            {
              userId: req.userId,
              username: req.username,
              org: req.organizationId,
              profile: human.profile,
              email: human.email,
              phone: human.phone,
              metadata: human.metadata,
            },
            ctx,
            "human.",
          );
          return create(CreateUserResponseSchema, { id: user.userId, creationDate: user.details?.creationDate, emailCode, phoneCode });
        }
        case "machine":
          throw unimplemented("machine", "the sample creates human users only");
        default:
          throw invalid("one of human or machine must be set");
      }
    },

    async getUserByID(req) {
      rejectUnknownFields(req);
      const { user } = await get(req.userId);
      return create(GetUserByIDResponseSchema, { details: user.details, user });
    },

    async updateHumanUser(req, ctx) {
      rejectUnknownFields(req);
      if (req.password !== undefined) throw unimplemented("password", "the sample keeps no passwords");
      rejectNotImplemented({ email: req.email, phone: req.phone }, "");
      const entry = await get(req.userId);
      const { user } = entry;
      const previous = user.details?.sequence ?? 0n;
      if (user.type.case !== "human") throw new ConnectError(`user "${user.userId}" is not a human user`, Code.FailedPrecondition);
      const human = user.type.value;
      const email = checkEmail(req.email, "email");
      const phone = checkPhone(req.phone, "phone");
      const profile = req.profile === undefined ? undefined : storedProfile(checkProfile(req.profile, "profile"));
      const changes: Record<string, unknown> = {};
      if (req.username !== undefined && req.username !== user.username) {
        if (req.username === "" || req.username.length > 200) throw invalid("username must have 1 to 200 characters");
        changes.userName = req.username;
      }
      if (profile !== undefined) {
        changes.firstName = profile.givenName;
        changes.lastName = profile.familyName;
      }
      if (email !== undefined) changes.email = email;
      if (phone !== undefined) changes.phone = phone;
      if (Object.keys(changes).length === 0) {
        throw invalid("nothing to change: set username, profile, email or phone");
      }
      if (changes.userName !== undefined) {
        user.username = req.username!;
        user.loginNames = [user.username];
        user.preferredLoginName = user.username;
      }
      if (profile !== undefined) human.profile = profile;
      if (email !== undefined) human.email = { $typeName: "zitadel.user.v2.HumanEmail", email, isVerified: req.email?.verification.case === "isVerified" && req.email.verification.value };
      if (phone !== undefined) human.phone = { $typeName: "zitadel.user.v2.HumanPhone", phone, isVerified: req.phone?.verification.case === "isVerified" && req.phone.verification.value };
      const prev = user.details!;
      user.details = details(prev.sequence + 1n, prev.resourceOwner, timestampDate(prev.creationDate!), new Date());
      await users.replace(entry, previous, eventOf(user, "user.human.changed", ctx, changes));
      return create(UpdateHumanUserResponseSchema, {
        details: user.details,
        emailCode: verificationCode(req.email),
        phoneCode: verificationCode(req.phone),
      });
    },

    async deleteUser(req, ctx) {
      rejectUnknownFields(req);
      const { user } = await get(req.userId);
      const prev = user.details!;
      user.details = details(prev.sequence + 1n, prev.resourceOwner, timestampDate(prev.creationDate!), new Date());
      // ZITADEL's UserRemovedEvent has no payload.
      await users.remove(user.userId, prev.sequence, eventOf(user, "user.removed", ctx, undefined));
      return create(DeleteUserResponseSchema, { details: user.details });
    },

    async listUsers(req) {
      rejectUnknownFields(req);
      const limit = req.query?.limit || 100;
      if (limit > 1000) throw invalid("query.limit must be at most 1000");
      const offset = Number(req.query?.offset ?? 0n);
      const matches = req.queries.map((q, i) => compileQuery(q, `queries[${i}]`, 0));
      const sortKey = sortKeyOf(req.sortingColumn);
      let all = (await users.list()).map((u) => u.user).filter((u) => matches.every((m) => m(u)));
      if (sortKey !== undefined) all.sort((a, b) => compare(sortKey(a), sortKey(b)));
      // Without a query the users come in creation order; with one, `asc` decides (descending by default).
      if (req.query !== undefined && !req.query.asc) all = all.reverse();
      return create(ListUsersResponseSchema, {
        details: create(ListDetailsSchema, { totalResult: BigInt(all.length), timestamp: timestampFromDate(new Date()) }),
        sortingColumn: req.sortingColumn,
        result: all.slice(offset, offset + limit),
      });
    },

    async *watchUsers(req) {
      rejectUnknownFields(req);
      for (const { user } of await users.list()) {
        yield create(WatchUsersResponseSchema, { user });
      }
    },
  };
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

function unimplemented(field: string, why: string): ConnectError {
  return new ConnectError(`${field} is not implemented by the sample: ${why}`, Code.Unimplemented);
}

/** rejectNotImplemented throws Code.Unimplemented for the first field of `req` that the sample does not implement. */
function rejectNotImplemented(req: NotImplemented, prefix: string): void {
  const password = req.passwordType?.case;
  if (password !== undefined) {
    throw unimplemented(prefix + (password === "hashedPassword" ? "hashed_password" : "password"), "the sample keeps no passwords");
  }
  if ((req.idpLinks?.length ?? 0) > 0) throw unimplemented(`${prefix}idp_links`, "the sample has no identity providers");
  if (req.totpSecret !== undefined) throw unimplemented(`${prefix}totp_secret`, "the sample has no second factors");
  if (req.email?.verification.case === "sendCode") {
    throw unimplemented(`${prefix}email.send_code`, "the sample sends no email, use return_code or is_verified");
  }
  if (req.phone?.verification.case === "sendCode") {
    throw unimplemented(`${prefix}phone.send_code`, "the sample sends no SMS, use return_code or is_verified");
  }
}

/**
 * rejectUnknownFields throws Code.InvalidArgument when a message (or a message
 * in it) has fields the sample's protos do not declare: a binary request of a
 * newer client. They would otherwise be dropped silently.
 */
function rejectUnknownFields(value: unknown, path = ""): void {
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => rejectUnknownFields(v, `${path}[${i}]`));
    return;
  }
  const message = value as Partial<Message> & Record<string, unknown>;
  const unknown = message.$unknown;
  if (unknown !== undefined && unknown.length > 0) {
    const where = path === "" ? "the request" : path;
    throw invalid(`${where} has fields the sample does not know: field number ${unknown.map((f) => f.no).join(", ")}`);
  }
  for (const [key, v] of Object.entries(message)) {
    if (key === "$typeName" || key === "$unknown") continue;
    rejectUnknownFields(v, path === "" ? key : `${path}.${key}`);
  }
}

function checkProfile(profile: SetHumanProfile | undefined, field: string): SetHumanProfile {
  if (profile === undefined) throw invalid(`${field} must be set`);
  for (const [name, value] of [["given_name", profile.givenName], ["family_name", profile.familyName]] as const) {
    if (value.trim() === "" || value.length > 200) throw invalid(`${field}.${name} must have 1 to 200 characters`);
  }
  for (const [name, value] of [["nick_name", profile.nickName], ["display_name", profile.displayName]] as const) {
    if (value !== undefined && value.length > 200) throw invalid(`${field}.${name} must be at most 200 characters`);
  }
  if (profile.preferredLanguage !== undefined && !/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(profile.preferredLanguage)) {
    throw invalid(`${field}.preferred_language "${profile.preferredLanguage}" is not a language tag`);
  }
  if (profile.gender !== undefined && Gender[profile.gender] === undefined) {
    throw invalid(`${field}.gender ${String(profile.gender)} is not a known gender`);
  }
  return profile;
}

/** storedProfile returns the profile as ZITADEL stores and returns it: display name defaulted, language "und" when unset. */
function storedProfile(profile: SetHumanProfile) {
  return {
    $typeName: "zitadel.user.v2.HumanProfile" as const,
    givenName: profile.givenName,
    familyName: profile.familyName,
    nickName: profile.nickName ?? "",
    displayName: profile.displayName || `${profile.givenName} ${profile.familyName}`,
    preferredLanguage: profile.preferredLanguage ?? "und",
    gender: profile.gender ?? Gender.UNSPECIFIED,
    avatarUrl: "",
  };
}

function checkEmail(email: SetHumanEmail | undefined, field: string): string | undefined {
  if (email === undefined) return undefined;
  if (email.email === "") throw invalid(`${field}.email must not be empty`);
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.email) || email.email.length > 200) {
    throw invalid(`${field}.email "${email.email}" is not a valid address`);
  }
  return email.email;
}

function checkPhone(phone: SetHumanPhone | undefined, field: string): string | undefined {
  if (phone === undefined) return undefined;
  if (!/^\+?[0-9][0-9 ()/-]{2,}$/.test(phone.phone) || phone.phone.length > 200) {
    throw invalid(`${field}.phone "${phone.phone}" is not a valid phone number`);
  }
  return phone.phone;
}

/** verificationCode returns a new code when the email or phone asks for it in the response. */
function verificationCode(contact: SetHumanEmail | SetHumanPhone | undefined): string | undefined {
  return contact?.verification.case === "returnCode" ? String(randomInt(1_000_000)).padStart(6, "0") : undefined;
}

/** omitEmpty drops undefined and "" values, as Go's `omitempty` does. */
function omitEmpty(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== ""));
}

type UserMatch = (user: User) => boolean;

function humanOf(user: User) {
  return user.type.case === "human" ? user.type.value : undefined;
}

/** compileQuery turns one of ZITADEL's user queries into a predicate; nested queries at most 20 deep. */
function compileQuery(query: SearchQuery, field: string, depth: number): UserMatch {
  if (depth > 20) throw invalid(`${field}: queries are nested too deeply`);
  const q = query.query;
  const text = (get: (u: User) => string, value: string, method: TextQueryMethod, name: string): UserMatch => {
    if (value.length > 200) throw invalid(`${field}.${name} must be at most 200 characters`);
    if (TextQueryMethod[method] === undefined) throw invalid(`${field}.method ${String(method)} is not a known method`);
    return (u) => matchText(get(u), value, method);
  };
  switch (q.case) {
    case "userNameQuery":
      return text((u) => u.username, q.value.userName, q.value.method, "user_name_query.user_name");
    case "firstNameQuery":
      return text((u) => humanOf(u)?.profile?.givenName ?? "", q.value.firstName, q.value.method, "first_name_query.first_name");
    case "lastNameQuery":
      return text((u) => humanOf(u)?.profile?.familyName ?? "", q.value.lastName, q.value.method, "last_name_query.last_name");
    case "nickNameQuery":
      return text((u) => humanOf(u)?.profile?.nickName ?? "", q.value.nickName, q.value.method, "nick_name_query.nick_name");
    case "displayNameQuery":
      return text((u) => humanOf(u)?.profile?.displayName ?? "", q.value.displayName, q.value.method, "display_name_query.display_name");
    case "emailQuery":
      return text((u) => humanOf(u)?.email?.email ?? "", q.value.emailAddress, q.value.method, "email_query.email_address");
    case "phoneQuery":
      return text((u) => humanOf(u)?.phone?.phone ?? "", q.value.number, q.value.method, "phone_query.number");
    case "loginNameQuery": {
      const { loginName, method } = q.value;
      text((u) => u.username, loginName, method, "login_name_query.login_name"); // validates
      return (u) => u.loginNames.some((n) => matchText(n, loginName, method));
    }
    case "stateQuery": {
      const state = q.value.state;
      return (u) => u.state === state;
    }
    case "typeQuery": {
      const type = q.value.type;
      return (u) => (type === Type.HUMAN && u.type.case === "human") || (type === Type.MACHINE && u.type.case === "machine");
    }
    case "inUserIdsQuery": {
      const ids = new Set(q.value.userIds);
      return (u) => ids.has(u.userId);
    }
    case "inUserEmailsQuery": {
      const emails = new Set(q.value.userEmails.map((e) => e.toLowerCase()));
      return (u) => emails.has((humanOf(u)?.email?.email ?? "").toLowerCase());
    }
    case "organizationIdQuery": {
      const org = q.value.organizationId;
      return (u) => u.details?.resourceOwner === org;
    }
    case "orQuery": {
      const all = q.value.queries.map((sub, i) => compileQuery(sub, `${field}.or_query.queries[${i}]`, depth + 1));
      return (u) => all.some((m) => m(u));
    }
    case "andQuery": {
      const all = q.value.queries.map((sub, i) => compileQuery(sub, `${field}.and_query.queries[${i}]`, depth + 1));
      return (u) => all.every((m) => m(u));
    }
    case "notQuery": {
      if (q.value.query === undefined) throw invalid(`${field}.not_query.query must be set`);
      const inner = compileQuery(q.value.query, `${field}.not_query.query`, depth + 1);
      return (u) => !inner(u);
    }
    default:
      throw invalid(`${field} must have a query set`);
  }
}

function matchText(value: string, filter: string, method: TextQueryMethod): boolean {
  const ignoreCase = method % 2 === 1;
  const v = ignoreCase ? value.toLowerCase() : value;
  const f = ignoreCase ? filter.toLowerCase() : filter;
  switch (method) {
    case TextQueryMethod.EQUALS:
    case TextQueryMethod.EQUALS_IGNORE_CASE:
      return v === f;
    case TextQueryMethod.STARTS_WITH:
    case TextQueryMethod.STARTS_WITH_IGNORE_CASE:
      return v.startsWith(f);
    case TextQueryMethod.CONTAINS:
    case TextQueryMethod.CONTAINS_IGNORE_CASE:
      return v.includes(f);
    case TextQueryMethod.ENDS_WITH:
    case TextQueryMethod.ENDS_WITH_IGNORE_CASE:
      return v.endsWith(f);
    default:
      return false;
  }
}

/** sortKeyOf returns the sort key of a sorting column; undefined keeps the creation order. */
function sortKeyOf(column: UserFieldName): ((u: User) => string | number) | undefined {
  switch (column) {
    case UserFieldName.USER_NAME:
      return (u) => u.username.toLowerCase();
    case UserFieldName.FIRST_NAME:
      return (u) => (humanOf(u)?.profile?.givenName ?? "").toLowerCase();
    case UserFieldName.LAST_NAME:
      return (u) => (humanOf(u)?.profile?.familyName ?? "").toLowerCase();
    case UserFieldName.NICK_NAME:
      return (u) => (humanOf(u)?.profile?.nickName ?? "").toLowerCase();
    case UserFieldName.DISPLAY_NAME:
      return (u) => (humanOf(u)?.profile?.displayName ?? "").toLowerCase();
    case UserFieldName.EMAIL:
      return (u) => (humanOf(u)?.email?.email ?? "").toLowerCase();
    case UserFieldName.STATE:
      return (u) => u.state;
    case UserFieldName.TYPE:
      return (u) => (u.type.case === "human" ? Type.HUMAN : Type.MACHINE);
    case UserFieldName.UNSPECIFIED:
    case UserFieldName.CREATION_DATE:
      return undefined;
    default:
      throw invalid(`sorting_column ${String(column)} is not a known column`);
  }
}

function compare(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
