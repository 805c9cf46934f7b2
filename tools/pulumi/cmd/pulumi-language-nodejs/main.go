// Command pulumi-language-nodejs fronts the upstream Node.js language host for the Pulumi CLI built
// in this module.
//
// Why it exists: the language host of Pulumi v3.259.0 lives in its own, untagged module
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) which the Go module proxy here
// refuses (403 "This module version is not available" for the pseudo-version of the v3.259.0 commit,
// for the bare commit and for @latest). The newest upstream host the proxy serves is the one inside
// github.com/pulumi/pulumi/sdk/v3 v3.68.0 (built by tools/pulumi-language-nodejs as
// pulumi-language-nodejs-upstream). It runs programs written against @pulumi/pulumi 3.259.0, but its
// RunPlugin answers "not supported", and the v3.259.0 engine launches policy packs through the language
// host's RunPlugin. So this process starts the upstream host, forwards every call to it unchanged,
// and implements only RunPlugin: it runs the policy pack (or Node.js plugin) entry point that ships in
// the pack's own @pulumi/pulumi, exactly what the CLI's former pulumi-analyzer-policy script did.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const runPluginMethod = "/pulumirpc.LanguageRuntime/RunPlugin"

// rawCodec passes gRPC frames through untouched, so calls this process does not handle are forwarded
// byte for byte, whatever fields the engine's newer protocol adds.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: unexpected message type %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: unexpected message type %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	upstreamBin := filepath.Join(filepath.Dir(self), "pulumi-language-nodejs-upstream")
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		if candidate := filepath.Join(filepath.Dir(resolved), "pulumi-language-nodejs-upstream"); fileExists(candidate) {
			upstreamBin = candidate
		}
	}
	if !fileExists(upstreamBin) {
		return fmt.Errorf("upstream language host %s not found (scripts/install-go-tools.sh builds it)", upstreamBin)
	}

	// Same flags and engine address as we were given: the upstream host parses them itself.
	child := exec.Command(upstreamBin, os.Args[1:]...)
	child.Stderr = os.Stderr
	childOut, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", upstreamBin, err)
	}
	childDone := make(chan error, 1)
	go func() { childDone <- child.Wait() }()

	reader := bufio.NewReader(childOut)
	portLine, err := reader.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the upstream language host's port: %w", err)
	}
	upstreamAddr := "127.0.0.1:" + strings.TrimSpace(portLine)
	go func() { _, _ = io.Copy(os.Stdout, reader) }()

	conn, err := grpc.NewClient(upstreamAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(400*1024*1024), grpc.MaxCallSendMsgSize(400*1024*1024)))
	if err != nil {
		return err
	}
	defer conn.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.MaxRecvMsgSize(400*1024*1024),
		grpc.MaxSendMsgSize(400*1024*1024),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			method, _ := grpc.MethodFromServerStream(stream)
			if method == runPluginMethod {
				return runPlugin(stream)
			}
			return forward(stream, conn, method)
		}),
	)

	fmt.Printf("%d\n", lis.Addr().(*net.TCPAddr).Port)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(lis) }()

	select {
	case err := <-childDone:
		srv.Stop()
		if err != nil {
			return fmt.Errorf("upstream language host exited: %w", err)
		}
		return nil
	case sig := <-signals:
		_ = child.Process.Signal(sig)
		srv.GracefulStop()
		<-childDone
		return nil
	case err := <-serveDone:
		_ = child.Process.Kill()
		return err
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// forward relays one call (unary or streaming) to the upstream host, with its metadata.
func forward(server grpc.ServerStream, conn *grpc.ClientConn, method string) error {
	ctx, cancel := context.WithCancel(server.Context())
	defer cancel()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	client, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
		method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}

	upErr := make(chan error, 1)
	go func() {
		for {
			var frame []byte
			if err := server.RecvMsg(&frame); err != nil {
				if errors.Is(err, io.EOF) {
					upErr <- client.CloseSend()
				} else {
					upErr <- err
				}
				return
			}
			if err := client.SendMsg(&frame); err != nil {
				upErr <- err
				return
			}
		}
	}()

	headerSent := false
	for {
		var frame []byte
		err := client.RecvMsg(&frame)
		if !headerSent {
			if md, herr := client.Header(); herr == nil {
				_ = server.SendHeader(md)
			}
			headerSent = true
		}
		if err != nil {
			server.SetTrailer(client.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := server.SendMsg(&frame); err != nil {
			return err
		}
		select {
		case err := <-upErr:
			if err != nil {
				return err
			}
		default:
		}
	}
}

// entryPoints maps the plugin kinds Node.js can serve to the script in @pulumi/pulumi that runs them.
var entryPoints = map[string]string{
	"analyzer": "@pulumi/pulumi/cmd/run-policy-pack",
	"resource": "@pulumi/pulumi/cmd/run-plugin",
}

// runPlugin starts a Node.js plugin (a policy pack) from its directory and streams its output.
func runPlugin(stream grpc.ServerStream) error {
	var frame []byte
	if err := stream.RecvMsg(&frame); err != nil {
		return err
	}
	var req pulumirpc.RunPluginRequest
	if err := proto.Unmarshal(frame, &req); err != nil {
		return status.Errorf(codes.InvalidArgument, "decoding RunPluginRequest: %v", err)
	}
	entry, ok := entryPoints[req.GetKind()]
	if !ok {
		return status.Errorf(codes.Unimplemented, "plugins of kind %q are not supported by the Node.js host", req.GetKind())
	}
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetPwd()
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "node is not on PATH: %v", err)
	}
	// Resolve from the plugin's own directory so its own @pulumi/pulumi (and @pulumi/policy) are used.
	resolve := exec.Command(nodeBin, "-e", fmt.Sprintf("console.log(require.resolve(%q, {paths: [process.cwd()]}))", entry))
	resolve.Dir = dir
	out, err := resolve.Output()
	if err != nil {
		return status.Errorf(codes.FailedPrecondition,
			"%s not found from %s: it looks like the plugin's dependencies are not installed; run npm install there", entry, dir)
	}
	script := strings.TrimSpace(string(out))

	var args []string
	switch req.GetKind() {
	case "analyzer": // run-policy-pack <engine-address> <program>
		args = append([]string{script}, req.GetArgs()...)
		args = append(args, dir)
	default: // run-plugin <program> [args...]
		args = append([]string{script, dir}, req.GetArgs()...)
	}
	cmd := exec.CommandContext(stream.Context(), nodeBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), req.GetEnv()...)

	var mu sync.Mutex
	send := func(resp *pulumirpc.RunPluginResponse) error {
		b, err := proto.Marshal(resp)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return stream.SendMsg(&b)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return status.Errorf(codes.Internal, "starting node: %v", err)
	}
	var wg sync.WaitGroup
	pump := func(r io.Reader, wrap func([]byte) *pulumirpc.RunPluginResponse) {
		defer wg.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunk := append([]byte(nil), buf[:n]...)
				if serr := send(wrap(chunk)); serr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go pump(stdout, func(b []byte) *pulumirpc.RunPluginResponse {
		return &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}}
	})
	go pump(stderr, func(b []byte) *pulumirpc.RunPluginResponse {
		return &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}}
	})
	wg.Wait()
	code := int32(0)
	if err := cmd.Wait(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return status.Errorf(codes.Internal, "running node: %v", err)
		}
		code = int32(exitErr.ExitCode())
	}
	return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}
