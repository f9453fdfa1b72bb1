import { randomInt } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type Details, DetailsSchema, ListDetailsSchema } from "../../gen/zitadel/object/v2/object_pb.js";
import {
  AddHumanUserResponseSchema,
  CreateUserResponseSchema,
  DeleteUserResponseSchema,
  GetUserByIDResponseSchema,
  HumanEmailSchema,
  HumanUserSchema,
  ListUsersResponseSchema,
  type SetHumanEmail,
  type SetHumanProfile,
  SetHumanProfileSchema,
  type SetMetadataEntry,
  UpdateHumanUserResponseSchema,
  type User,
  UserSchema,
  type UserService,
  WatchUsersResponseSchema,
} from "../../gen/zitadel/user/v2/user_service_pb.js";
import { callerContextKey } from "../caller-context.js";
import { newId } from "../id.js";

/**
 * UserEvent is a state change of the sample UserService, as ZITADEL's event
 * store would record it.
 */
export interface UserEvent {
  readonly aggregateID: string;
  readonly aggregateType: "user";
  readonly resourceOwner: string;
  /** "user.human.added", "user.human.changed" or "user.removed". */
  readonly eventType: string;
  readonly sequence: number;
  readonly createdAt: Date;
  /** The user who made the change, "" when unknown. */
  readonly creator: string;
  readonly payload: Record<string, unknown>;
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
   * RPC replies, so a durable event queue can persist the event first. Default nothing.
   */
  readonly onEvent?: (event: UserEvent) => void | Promise<void>;
  /** Organization of users added without one, default "sample-org". */
  readonly defaultOrgId?: string;
  /**
   * The users by ID, default a new map. Share it to read users elsewhere, as
   * the sample's userinfo endpoint does.
   */
  readonly users?: Map<string, User>;
}

/** NewHuman is what AddHumanUser and CreateUser have in common. */
interface NewHuman {
  readonly userId: string | undefined;
  readonly username: string | undefined;
  /** The resource owner. */
  readonly org: string;
  readonly profile: SetHumanProfile | undefined;
  readonly email: SetHumanEmail | undefined;
  readonly metadata: readonly SetMetadataEntry[];
}

/**
 * createUserService returns an in-memory implementation of the sample
 * zitadel.user.v2.UserService. AddHumanUser and CreateUser create human users
 * the same way and emit the same "user.human.added" event; CreateUser answers
 * machine users (service accounts) with Code.Unimplemented, and requires
 * `organization_id` (the resource owner of the new user), as ZITADEL does.
 */
export function createUserService(options: UserServiceOptions = {}): ServiceImpl<typeof UserService> {
  const users = options.users ?? new Map<string, User>();
  const usernames = new Map<string, string>([...users.values()].map((u) => [u.username, u.userId]));
  const defaultOrg = options.defaultOrgId ?? "sample-org";

  const details = (sequence: bigint, owner: string, created: Date, changed: Date): Details =>
    create(DetailsSchema, {
      sequence,
      changeDate: timestampFromDate(changed),
      creationDate: timestampFromDate(created),
      resourceOwner: owner,
    });
  const emit = async (user: User, eventType: string, ctx: HandlerContext, payload: Record<string, unknown>) => {
    await options.onEvent?.({
      aggregateID: user.userId,
      aggregateType: "user",
      resourceOwner: user.details?.resourceOwner ?? "",
      eventType,
      sequence: Number(user.details?.sequence ?? 0n),
      createdAt: user.details?.changeDate ? timestampDate(user.details.changeDate) : new Date(),
      creator: ctx.values.get(callerContextKey).userID ?? "",
      payload,
    });
  };
  const get = (userId: string): User => {
    if (userId === "") throw new ConnectError("user_id must not be empty", Code.InvalidArgument);
    const user = users.get(userId);
    if (user === undefined) throw new ConnectError(`user "${userId}" not found`, Code.NotFound);
    return user;
  };
  const checkEmail = (email: SetHumanEmail | undefined, required: boolean): string | undefined => {
    if (email === undefined || email.email === "") {
      if (required) throw new ConnectError("email.email must not be empty", Code.InvalidArgument);
      return undefined;
    }
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.email) || email.email.length > 200) {
      throw new ConnectError(`email "${email.email}" is not a valid address`, Code.InvalidArgument);
    }
    return email.email;
  };
  const emailCode = (email: SetHumanEmail | undefined) =>
    email?.verification.case === "returnCode" ? String(randomInt(1_000_000)).padStart(6, "0") : undefined;

  /** addHuman validates and stores a new human user, emits "user.human.added" and returns it with its email code. */
  const addHuman = async (req: NewHuman, ctx: HandlerContext): Promise<{ user: User; emailCode: string | undefined }> => {
    const profile = req.profile;
    if (profile === undefined || profile.givenName.trim() === "" || profile.familyName.trim() === "") {
      throw new ConnectError("profile.given_name and profile.family_name must not be empty", Code.InvalidArgument);
    }
    const email = checkEmail(req.email, true)!;
    const userId = req.userId ?? newId();
    if (userId === "" || userId.length > 200) throw new ConnectError("user_id must have 1 to 200 characters", Code.InvalidArgument);
    if (users.has(userId)) throw new ConnectError(`user "${userId}" already exists`, Code.AlreadyExists);
    const username = req.username ?? email;
    if (usernames.has(username)) throw new ConnectError(`username "${username}" is taken`, Code.AlreadyExists);
    const now = new Date();
    const user = create(UserSchema, {
      userId,
      username,
      details: details(1n, req.org, now, now),
      human: create(HumanUserSchema, {
        profile: create(SetHumanProfileSchema, profile),
        email: create(HumanEmailSchema, { email, isVerified: req.email?.verification.case === "isVerified" && req.email.verification.value }),
        metadata: [...req.metadata],
      }),
    });
    users.set(userId, user);
    usernames.set(username, userId);
    await emit(user, "user.human.added", ctx, {
      userName: username,
      firstName: profile.givenName,
      lastName: profile.familyName,
      email,
    });
    return { user, emailCode: emailCode(req.email) };
  };

  return {
    async addHumanUser(req, ctx) {
      const org = req.organization?.org.case === "orgId" ? req.organization.org.value : ctx.values.get(callerContextKey).orgID || defaultOrg;
      const { user, emailCode } = await addHuman(
        { userId: req.userId, username: req.username, org, profile: req.profile, email: req.email, metadata: req.metadata },
        ctx,
      );
      return create(AddHumanUserResponseSchema, { userId: user.userId, details: user.details, emailCode });
    },

    async createUser(req, ctx) {
      if (req.organizationId === "" || req.organizationId.length > 200) {
        throw new ConnectError("organization_id must have 1 to 200 characters", Code.InvalidArgument);
      }
      switch (req.userType.case) {
        case "human": {
          const { profile, email } = req.userType.value;
          const { user, emailCode } = await addHuman(
            { userId: req.userId, username: req.username, org: req.organizationId, profile, email, metadata: [] },
            ctx,
          );
          return create(CreateUserResponseSchema, { id: user.userId, creationDate: user.details?.creationDate, emailCode });
        }
        case "machine":
          throw new ConnectError("the sample creates human users only, machine users are not implemented", Code.Unimplemented);
        default:
          throw new ConnectError("one of human or machine must be set", Code.InvalidArgument);
      }
    },

    async getUserByID(req) {
      const user = get(req.userId);
      return create(GetUserByIDResponseSchema, { details: user.details, user });
    },

    async updateHumanUser(req, ctx) {
      const user = get(req.userId);
      const email = checkEmail(req.email, false);
      const human = user.human ?? create(HumanUserSchema);
      const changes: Record<string, unknown> = {};
      if (req.username !== undefined && req.username !== user.username) {
        if (req.username === "" || usernames.has(req.username)) {
          throw new ConnectError(`username "${req.username}" is empty or taken`, Code.AlreadyExists);
        }
        changes.userName = req.username;
      }
      if (req.profile !== undefined) {
        if (req.profile.givenName.trim() === "" || req.profile.familyName.trim() === "") {
          throw new ConnectError("profile.given_name and profile.family_name must not be empty", Code.InvalidArgument);
        }
        changes.firstName = req.profile.givenName;
        changes.lastName = req.profile.familyName;
      }
      if (email !== undefined) changes.email = email;
      if (Object.keys(changes).length === 0) {
        throw new ConnectError("nothing to change", Code.InvalidArgument);
      }
      if (changes.userName !== undefined) {
        usernames.delete(user.username);
        usernames.set(req.username!, user.userId);
        user.username = req.username!;
      }
      if (req.profile !== undefined) human.profile = create(SetHumanProfileSchema, req.profile);
      if (email !== undefined) human.email = create(HumanEmailSchema, { email, isVerified: req.email?.verification.case === "isVerified" && req.email.verification.value });
      const prev = user.details!;
      user.human = human;
      user.details = details(prev.sequence + 1n, prev.resourceOwner, timestampDate(prev.creationDate!), new Date());
      await emit(user, "user.human.changed", ctx, changes);
      return create(UpdateHumanUserResponseSchema, { details: user.details, emailCode: emailCode(req.email) });
    },

    async deleteUser(req, ctx) {
      const user = get(req.userId);
      users.delete(user.userId);
      usernames.delete(user.username);
      const prev = user.details!;
      user.details = details(prev.sequence + 1n, prev.resourceOwner, timestampDate(prev.creationDate!), new Date());
      await emit(user, "user.removed", ctx, { userName: user.username });
      return create(DeleteUserResponseSchema, { details: user.details });
    },

    async listUsers(req) {
      const limit = req.query?.limit || 100;
      if (limit > 1000) throw new ConnectError("query.limit must be at most 1000", Code.InvalidArgument);
      const offset = Number(req.query?.offset ?? 0n);
      const needle = req.emailContains.toLowerCase();
      let all = [...users.values()].filter((u) => needle === "" || (u.human?.email?.email ?? "").toLowerCase().includes(needle));
      if (req.query?.asc === false) all = all.reverse();
      return create(ListUsersResponseSchema, {
        details: create(ListDetailsSchema, { totalResult: BigInt(all.length), timestamp: timestampFromDate(new Date()) }),
        result: all.slice(offset, offset + limit),
      });
    },

    async *watchUsers() {
      for (const user of users.values()) {
        yield create(WatchUsersResponseSchema, { user });
      }
    },
  };
}
