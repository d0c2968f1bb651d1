// Package gcpsecretstest is an in-process fake of Secret Manager's gRPC API
// for tests. Google ships no Secret Manager emulator, so tests run the real
// Go client against this server on 127.0.0.1.
//
// Only AccessSecretVersion is implemented, with the real service's rules for
// "latest", numbered versions, NOT_FOUND, PERMISSION_DENIED for a foreign
// project, and a CRC32C over the payload.
package gcpsecretstest

import (
	"context"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Project is the only project the server knows; other projects get
// PERMISSION_DENIED, as they would for a caller without access.
const Project = "onboard-test"

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the host:port the server listens on.
	Addr string

	mu       sync.Mutex
	versions map[string][]string // secret ID → payloads; version n is index n-1
	badCRC   map[string]bool
}

// NewServer starts a server on a free loopback port and stops it when the
// test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("gcpsecretstest: listen: %v", err)
	}
	s := &Server{Addr: lis.Addr().String(), versions: map[string][]string{}, badCRC: map[string]bool{}}
	gs := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(gs, service{s: s})
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)
	return s
}

// ClientOptions connect secretmanager.NewClient (or gcpsecrets.New) to the
// server without credentials or TLS.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// AddVersion adds a version holding value to secret name (creating the
// secret) and returns its version number; it becomes "latest".
func (s *Server) AddVersion(name, value string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[name] = append(s.versions[name], value)
	return len(s.versions[name])
}

// CorruptChecksum makes responses for name carry a wrong CRC32C, to exercise
// a client's integrity check.
func (s *Server) CorruptChecksum(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badCRC[name] = true
}

// service keeps the gRPC methods off Server's exported API.
type service struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	s *Server
}

func (svc service) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	// projects/{project}/secrets/{secret}/versions/{version}
	parts := strings.Split(req.GetName(), "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[2] != "secrets" || parts[4] != "versions" {
		return nil, status.Errorf(codes.InvalidArgument, "invalid resource name %q", req.GetName())
	}
	project, id, version := parts[1], parts[3], parts[5]
	if project != Project {
		return nil, status.Errorf(codes.PermissionDenied, "permission denied on resource project %s", project)
	}

	s := svc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	payloads := s.versions[id]
	n := len(payloads)
	if version != "latest" {
		var err error
		if n, err = strconv.Atoi(version); err != nil || n < 1 || n > len(payloads) {
			return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", req.GetName())
		}
	}
	if n == 0 {
		return nil, status.Errorf(codes.NotFound, "Secret [projects/%s/secrets/%s] not found or has no versions.", project, id)
	}

	data := []byte(payloads[n-1])
	crc := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	if s.badCRC[id] {
		crc++
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    "projects/" + project + "/secrets/" + id + "/versions/" + strconv.Itoa(n),
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &crc},
	}, nil
}
