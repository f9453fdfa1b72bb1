import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/** An error from @grpc/grpc-js, with the same numeric codes as Connect's Code. */
export interface GrpcJsError {
  readonly code: number;
  readonly details: string;
}

/**
 * A promise-based @grpc/grpc-js client of a service in proto/, for tests that
 * must prove interoperability with the reference gRPC implementation.
 */
export interface GrpcJsClient {
  unary<T = any>(method: string, request: object, metadata?: Record<string, string>): Promise<T>;
  close(): void;
}

export function createGrpcJsClient(url: string, protoFile: string, service: string): GrpcJsClient {
  const definition = protoLoader.loadSync(protoFile, {
    includeDirs: [protoDir],
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition);
  const ctor = service.split(".").reduce<any>((o, k) => o[k], pkg) as grpc.ServiceClientConstructor;
  const client = new ctor(new URL(url).host, grpc.credentials.createInsecure());
  return {
    unary(method, request, metadata = {}) {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      const fn = (client as any)[method] as Function;
      return new Promise((resolve, reject) => {
        fn.call(client, request, md, { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, res: any) =>
          err ? reject({ code: err.code, details: err.details } satisfies GrpcJsError) : resolve(res),
        );
      });
    },
    close: () => client.close(),
  };
}
